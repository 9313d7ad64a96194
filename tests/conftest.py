"""Shared fixtures: a fresh registry per test, throwaway installed distributions."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from optreg._core.catalog import Catalog, install  # install(): a fresh default mid-test
from optreg.testing import isolated_registry

# The suite steps tiny tensors: on a small, shared CI machine torch's intra-op
# threads cost far more than they gain (seen here: ~50x slower steps).
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _bitsandbytes_manager_emptied() -> Iterator[None]:
    """Empty bitsandbytes' process-wide ``GlobalOptimManager`` around every test.

    It keeps per-parameter options keyed by ``id(param)`` and by ``(group, index)``
    *positions*; transformers' Trainer registers its embeddings there (32-bit state). A
    reference optimizer built straight from bitsandbytes in a later test then kept
    32-bit state for its first three parameters and differed from optreg's by ~1e-4.
    (optreg's own bnb optimizers keep their options to themselves: builtin/bnb.py.)
    """
    _empty_bnb_manager()
    yield
    _empty_bnb_manager()


def _empty_bnb_manager() -> None:
    optim = sys.modules.get("bitsandbytes.optim")
    if optim is None:  # never imported here: nothing to empty, and nothing to import
        return
    manager = optim.GlobalOptimManager.get_instance()
    manager.pid2config.clear()
    manager.index2config.clear()
    manager.module_weight_config_triple.clear()


@pytest.fixture
def fresh_registry() -> Iterator[Catalog]:
    """A fresh catalog for the test (`optreg.testing.isolated_registry`): nothing it
    registers, prefers or discovers outlives it."""
    with isolated_registry() as catalog:
        yield catalog


def rediscover() -> Catalog:
    """A fresh catalog for the rest of a test using ``fresh_registry`` (which puts the one
    before the test back): the next access discovers what is installed now, under the
    environment as it is now."""
    fresh = Catalog()
    install(fresh)
    return fresh


@pytest.fixture
def out_png(tmp_path: Path) -> str:
    """A PNG path the optreg command may write (its directory exists)."""
    return str(tmp_path / "x.png")


MakeDist = Callable[..., Path]


@pytest.fixture
def make_dist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: None
) -> Iterator[MakeDist]:
    """Install throwaway distributions: a ``*.dist-info`` plus modules on ``sys.path``.

    ``make_dist("acme-opt", entry_points={"optreg.optimizers": {"lion": "acme_opt:Lion"}},
    modules={"acme_opt": "class Lion: ..."})`` returns the site directory (``description``:
    the README its metadata carries). Modules
    written here are removed from ``sys.modules`` after the test.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    created: list[str] = []

    def make(
        name: str,
        *,
        version: str = "1.0",
        entry_points: dict[str, dict[str, str]] | None = None,
        modules: dict[str, str] | None = None,
        description: str | None = None,
    ) -> Path:
        dist_dir = site / f"{name.replace('-', '_')}-{version}.dist-info"
        dist_dir.mkdir()
        body = "" if description is None else f"\n{description}"  # the README, as pip writes it
        (dist_dir / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{body}"
        )
        lines: list[str] = []
        for group, eps in (entry_points or {}).items():
            lines.append(f"[{group}]")
            lines.extend(f"{k} = {v}" for k, v in eps.items())
            lines.append("")
        (dist_dir / "entry_points.txt").write_text("\n".join(lines))
        for mod, source in (modules or {}).items():
            path = site / (mod.replace(".", "/") + ".py")
            path.parent.mkdir(parents=True, exist_ok=True)
            for parent in path.relative_to(site).parents:
                if str(parent) != ".":
                    (site / parent / "__init__.py").touch()
            path.write_text(textwrap.dedent(source))
            created.append(mod)
        rediscover()
        return site

    yield make
    for mod in created:
        for key in [k for k in sys.modules if k == mod or k.startswith(mod + ".")]:
            del sys.modules[key]


class ScanCounter:
    """How many times discovery scanned the installed distributions."""

    count = 0


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch, fresh_registry: None) -> ScanCounter:
    """Count discovery's ``importlib_metadata.entry_points()`` scans from a fresh registry."""
    import importlib_metadata

    counter = ScanCounter()
    real = importlib_metadata.entry_points

    def counting(**params: Any) -> Any:
        counter.count += 1
        return real(**params)

    monkeypatch.setattr(importlib_metadata, "entry_points", counting)
    return counter
