"""optreg.builtin: the catalogue in code, registered through the plugin path, lazy, blockable."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import rediscover

import optreg
from optreg.builtin import CATALOGUE, BuiltinPlugin
from optreg.testing import needs

pytestmark = pytest.mark.usefixtures("fresh_registry")

ROOT = Path(__file__).resolve().parents[2]
IMPLEMENTATION_MODULES = (
    "optreg.builtin.adafactor",
    "optreg.builtin.adamw",
    "optreg.builtin.bnb",
    "optreg.builtin.greedy",
    "optreg.builtin.plateau",
    "optreg.builtin.schedules",
    "optreg.builtin.torch_optim",
)


def _catalogue(kind: str) -> dict[str, tuple[BuiltinPlugin, str]]:
    return {
        n.name: (plugin, n.target)
        for plugin in CATALOGUE
        for n in (plugin.optimizers if kind == "optimizer" else plugin.schedulers)
    }


@pytest.mark.parametrize("kind", ["optimizer", "scheduler"])
def test_every_catalogue_name_is_registered_as_a_builtin(kind: str) -> None:
    registry = optreg.optimizers if kind == "optimizer" else optreg.schedulers
    catalogue = _catalogue(kind)
    builtins = {e.name: e for e in registry.entries() if e.source == "builtin"}
    assert set(builtins) == set(catalogue)
    for name, (plugin, target) in catalogue.items():
        entry = builtins[name]
        assert entry.target == target  # a lazy "module:attr" string, not an object
        assert entry.provider == "optreg"
        assert entry.version == optreg.__version__
        assert entry.entry_point == f"optreg: optreg:{plugin.name}"


def test_every_target_resolves() -> None:
    """Each lazy target names a real object (a typo would surface only when used)."""
    for registry in (optreg.optimizers, optreg.schedulers):
        for entry in registry.entries():
            available, reason = registry.status(entry)
            if not available:
                assert entry.requires, reason  # only optional dependencies may be missing
                continue
            assert callable(registry.load(entry)), entry.target


def test_the_builtins_are_pluggy_plugins_named_optreg_colon_plugin(
    fresh_registry: optreg.Catalog,
) -> None:
    optreg.list_optimizers()  # discovery
    pm = fresh_registry.discovery.pm
    for plugin in CATALOGUE:
        assert pm.get_plugin(f"optreg:{plugin.name}") is plugin


def test_conformance_needs_are_declared_on_the_registrations() -> None:
    assert needs(optreg.optimizers["lbfgs"]) == {"requires_closure": True, "param_groups": False}
    assert needs(optreg.optimizers["sparse_adam"]) == {"sparse_grad": True}
    assert needs(optreg.optimizers["sgd_8bit"]) == {"kwargs": {"momentum": 0.9}}
    assert needs(optreg.schedulers["adafactor"]) == {"optimizer": "adafactor"}
    assert needs(optreg.schedulers["greedy"]) == {"metric_driven": True}
    assert needs(optreg.optimizers["adamw"]) == {}


@pytest.mark.parametrize(
    ("block", "gone", "kept"),
    [
        ("optreg:bnb", "adamw_8bit", "adamw"),
        ("optreg:torch_optim", "adamw", "adamw_hf"),
        ("optreg:schedules", "cosine", "adafactor"),
    ],
)
def test_a_builtin_plugin_can_be_blocked(
    monkeypatch: pytest.MonkeyPatch, block: str, gone: str, kept: str
) -> None:
    monkeypatch.setenv("OPTREG_BLOCK_PLUGINS", block)
    rediscover()
    names = set(optreg.list_optimizers()) | set(optreg.list_schedulers())
    assert gone not in names
    assert kept in names


LIST_PROBE = """
import contextlib, io, json, sys
import optreg
optimizers, schedulers = optreg.list_optimizers(), optreg.list_schedulers()
infos = [optreg.optimizers.status(e) for e in optreg.optimizers.entries()]
from optreg import cli
with contextlib.redirect_stdout(io.StringIO()) as out:
    rc = cli.main(["list"])
print(json.dumps({
    "rc": rc,
    "optimizers": optimizers,
    "schedulers": schedulers,
    "listed": out.getvalue(),
    "heavy": sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")
                    or m == "bitsandbytes" or m == "matplotlib"),
    "builtin": sorted(m for m in sys.modules if m.startswith("optreg.builtin.")),
    "file": optreg.__file__,
}))
"""


def _probe(env: dict[str, str], *args: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, *args, "-c", LIST_PROBE],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=env.get("PROBE_CWD"),
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTREG_")}
    env.update(extra)
    return env


def test_listing_imports_neither_torch_nor_an_implementation_module() -> None:
    out = _probe(_clean_env())
    assert out["rc"] == 0
    assert out["heavy"] == []
    assert out["builtin"] == []
    assert "adamw" in out["optimizers"] and "cosine" in out["schedulers"]
    assert "adamw_8bit" in str(out["listed"])


def test_builtins_exist_in_a_bare_source_tree(tmp_path: Path) -> None:
    """optreg's source copied into a directory on PYTHONPATH, with no install metadata for
    optreg anywhere on sys.path (vendored, zipapp, PYTHONPATH): every builtin is there."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "optreg", src / "optreg", ignore=shutil.ignore_patterns("__pycache__"))
    # the environment's site-packages without optreg's own metadata or editable finder
    site = Path(sysconfig.get_paths()["purelib"])
    bare = tmp_path / "site"
    bare.mkdir()
    for item in site.iterdir():
        lowered = item.name.lower()
        if lowered.startswith(("optreg", "__editable__", "_optreg")) or lowered.endswith(".pth"):
            continue
        (bare / item.name).symlink_to(item)
    env = _clean_env(PYTHONPATH=os.pathsep.join([str(src), str(bare)]), PROBE_CWD=str(tmp_path))
    out = _probe(env, "-S")  # -S: no site-packages of its own, only the two dirs above
    assert str(out["file"]).startswith(str(src))
    check = subprocess.run(
        [sys.executable, "-S", "-c", "import importlib.metadata as m; m.distribution('optreg')"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert "PackageNotFoundError" in check.stderr  # really no metadata
    installed = optreg.list_optimizers(), optreg.list_schedulers()
    assert (out["optimizers"], out["schedulers"]) == (list(installed[0]), list(installed[1]))
    assert out["heavy"] == []
    build = subprocess.run(
        [
            sys.executable,
            "-S",
            "-c",
            "import torch, optreg; p = torch.nn.Parameter(torch.zeros(2)); "
            "o = optreg.get_optimizer('adamw', [p], lr=0.1); "
            "s = optreg.get_scheduler('cosine', o, num_warmup_steps=1, num_training_steps=4); "
            "print(type(o).__name__, type(s).__name__, optreg.optimizer_info('adamw').version)",
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    assert build.stdout.split() == ["AdamW", "ScheduleLR", "0+unknown"]
