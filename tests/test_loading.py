"""optreg._loading: targets imported once and only when used; availability without importing."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import pytest

from optreg import MissingDependencyError, PluginLoadError, _loading
from optreg._entry import make_entry

if TYPE_CHECKING:
    from conftest import MakeDist


def test_load_imports_once_and_caches(make_dist: MakeDist) -> None:
    make_dist("acme-x", modules={"acme_x": "import torch\nclass Opt(torch.optim.SGD): pass\n"})
    entry = make_entry("optimizer", "x", "acme_x:Opt", provider="acme_x")
    assert _loading.status(entry) == (True, None)
    assert "acme_x" not in sys.modules  # status() imports nothing
    first = _loading.load(entry)
    assert first.__name__ == "Opt" and "acme_x" in sys.modules
    assert _loading.load(entry) is first


def test_a_broken_target_is_a_chained_plugin_load_error(make_dist: MakeDist) -> None:
    make_dist("acme-y", modules={"acme_y": "raise RuntimeError('no luck')\n"})
    entry = make_entry(
        "optimizer", "y", "acme_y:Opt", provider="acme_y", entry_point="optreg.optimizers: y"
    )
    with pytest.raises(PluginLoadError) as info:
        _loading.load(entry)
    message = str(info.value)
    assert message == (
        "optimizer 'y' from distribution 'acme_y' (entry point optreg.optimizers: y): "
        "cannot load 'acme_y:Opt': RuntimeError: no luck"
    )
    assert isinstance(info.value.__cause__, RuntimeError)
    assert _loading.status(entry) == (False, message)  # remembered for listings


def test_missing_requirement_names_the_extra() -> None:
    entry = make_entry(
        "optimizer", "z", "nope_mod:Z", provider="optreg", requires=["nope_mod"], extra="nope"
    )
    reason = "optimizer 'z' needs nope_mod, which is not installed; install it with: pip install \"optreg[nope]\""
    assert _loading.status(entry) == (False, reason)
    with pytest.raises(MissingDependencyError, match="optreg\\[nope\\]"):
        _loading.load(entry)


def test_minimum_version_requirement() -> None:
    import torch

    too_new = make_entry("optimizer", "w", "torch.optim:SGD", requires=["torch>=999.0"])
    available, reason = _loading.status(too_new)
    assert not available
    assert reason == f"optimizer 'w' needs torch>=999.0, but torch {torch.__version__} is installed"
    assert _loading.status(
        make_entry("optimizer", "v", "torch.optim:SGD", requires=["torch>=2.4"])
    )[0]


def test_missing_target_module_is_unavailable() -> None:
    entry = make_entry("scheduler", "q", "not_installed_pkg.mod:f", provider="acme")
    assert _loading.status(entry) == (
        False,
        "module 'not_installed_pkg' of target 'not_installed_pkg.mod:f' is not installed",
    )
