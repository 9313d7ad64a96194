"""The installed distribution: metadata, entry points, ``py.typed`` and a smoke test.

These tests read whatever ``optreg`` is installed: the editable install in the
ordinary test environments, and the built wheel in a clean virtual environment
when ``tox -e pkg`` (``tools/check_wheel.py``) runs this file from outside the
source tree with ``OPTREG_PKG_CHECK=wheel``. There they also check that the
package came from the wheel, and compare the metadata with ``OPTREG_PYPROJECT``.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

import optreg

DIST = md.distribution("optreg")
WHEEL_MODE = os.environ.get("OPTREG_PKG_CHECK") == "wheel"
needs_wheel = pytest.mark.skipif(not WHEEL_MODE, reason="only for the built wheel (tox -e pkg)")

# The contract (DESIGN.md): what every release must declare, whatever else it adds.
CORE_DEPENDENCIES = {"torch", "pluggy", "importlib-metadata"}
EXTRAS = {"bnb", "plot", "test", "config", "dev"}


def _pyproject() -> dict[str, Any] | None:
    """The ``[project]`` table the package was built from, when it can be read."""
    env = os.environ.get("OPTREG_PYPROJECT")
    path = Path(env) if env else Path(optreg.__file__).resolve().parents[1] / "pyproject.toml"
    if not path.is_file():
        return None
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        return None
    project: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))["project"]
    return project


PROJECT = _pyproject()
needs_pyproject = pytest.mark.skipif(
    PROJECT is None, reason="pyproject.toml not found or no tomllib (Python < 3.11)"
)


def _req_key(req: Requirement) -> tuple[str, str, str, str]:
    name = req.name.lower().replace("_", "-").replace(".", "-")
    return (name, ",".join(sorted(req.extras)), str(req.specifier), str(req.marker or ""))


def _requires() -> list[Requirement]:
    return [Requirement(r) for r in DIST.requires or []]


def test_name_and_version() -> None:
    assert DIST.metadata["Name"] == "optreg"
    assert optreg.__version__ == DIST.version
    if PROJECT is not None:
        assert DIST.version == PROJECT["version"]


def test_core_dependencies_are_unconditional() -> None:
    core = {r.name for r in _requires() if r.marker is None}
    assert core == CORE_DEPENDENCIES


def test_extras_declared() -> None:
    assert set(DIST.metadata.get_all("Provides-Extra") or []) == EXTRAS
    by_extra = {
        extra: {r.name for r in _requires() if r.marker and r.marker.evaluate({"extra": extra})}
        for extra in EXTRAS
    }
    assert "bitsandbytes" in by_extra["bnb"]
    assert {"matplotlib", "tqdm"} <= by_extra["plot"]
    assert {"pytest", "hypothesis"} <= by_extra["test"]
    assert "pyyaml" in {n.lower() for n in by_extra["config"]}


@needs_pyproject
def test_metadata_matches_pyproject() -> None:
    assert PROJECT is not None
    assert DIST.metadata["Requires-Python"] == PROJECT["requires-python"]
    assert DIST.metadata["Summary"] == PROJECT["description"]
    expected = {_req_key(Requirement(r)) for r in PROJECT["dependencies"]}
    for extra, reqs in PROJECT["optional-dependencies"].items():
        for text in reqs:
            req = Requirement(text)
            marker = f'extra == "{extra}"'
            if req.marker is not None:
                marker = f"({req.marker}) and {marker}"
            expected.add(_req_key(Requirement(f"{str(req).split(';')[0]}; {marker}")))
    assert {_req_key(r) for r in _requires()} == expected


def test_console_script() -> None:
    scripts = {ep.name: ep.value for ep in DIST.entry_points if ep.group == "console_scripts"}
    assert scripts == {"optreg": "optreg.cli:main"}


def test_builtins_need_no_entry_points() -> None:
    """The builtins are a catalogue in code (optreg.builtin): optreg's metadata declares no
    optreg entry points, so an install and a bare source tree see the same names."""
    assert [ep for ep in DIST.entry_points if ep.group.startswith("optreg")] == []
    if PROJECT is not None:
        assert set(PROJECT["entry-points"]) == {"pytest11"}, "only the kit's pytest plugin"
        assert PROJECT["entry-points"]["pytest11"] == {"optreg": "optreg.testing.plugin"}


def test_py_typed_marker() -> None:
    assert (Path(optreg.__file__).parent / "py.typed").is_file()


@needs_wheel
def test_wheel_files() -> None:
    files = {f.as_posix() for f in DIST.files or []}
    assert "optreg/py.typed" in files
    assert "optreg/builtin/__init__.py" in files
    top = {f.split("/")[0] for f in files if not f.startswith(("../", "optreg-"))}
    assert top == {"optreg"}, f"the wheel installs more than the optreg package: {sorted(top)}"


@needs_wheel
def test_imported_from_the_wheel_not_the_source_tree() -> None:
    package = Path(optreg.__file__).resolve().parent
    assert Path(str(DIST.locate_file("optreg"))).resolve() == package
    assert package.parent.name == "site-packages"
    if PROJECT is not None and os.environ.get("OPTREG_PYPROJECT"):
        source = Path(os.environ["OPTREG_PYPROJECT"]).resolve().parent
        assert source not in package.parents


def test_smoke_build_optimizer_and_scheduler_by_name() -> None:
    import torch

    assert {"adamw", "sgd"} <= set(optreg.list_optimizers())
    assert {"constant", "linear", "cosine"} <= set(optreg.list_schedulers())

    param = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    opt = optreg.get_optimizer("sgd", [param], lr=0.25)
    assert type(opt) is torch.optim.SGD
    sched = optreg.get_scheduler("linear", opt, num_warmup_steps=2, num_training_steps=10)
    # transformers' linear schedule: step / warmup, then (T - step) / (T - warmup).
    assert opt.param_groups[0]["lr"] == 0.0
    lrs = []
    for _ in range(3):
        (param**2).sum().backward()
        opt.step()
        opt.zero_grad()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == [0.125, 0.25, 0.21875]
    # SGD on sum(p**2) is p <- p - lr * 2p, at lr 0, 0.125, 0.25: p0 * 1 * 0.75 * 0.5
    # (every number here is exact in float32).
    assert torch.equal(param.detach(), torch.tensor([0.375, -0.75, 1.125]))


def test_smoke_adamw_by_name_is_torch_adamw() -> None:
    import torch

    model = torch.nn.Linear(4, 2)
    opt = optreg.get_optimizer("adamw", model, lr=1e-3, weight_decay=0.01)
    assert isinstance(opt, torch.optim.AdamW)
    groups = sorted((g["weight_decay"], len(g["params"])) for g in opt.param_groups)
    assert groups == [(0.0, 1), (0.01, 1)]  # the bias is not decayed


def _optreg_command() -> list[str]:
    exe = shutil.which("optreg", path=str(Path(sys.executable).parent))
    assert exe is not None, f"no optreg console script next to {sys.executable}"
    return [exe]


@pytest.mark.parametrize("how", ["console script", "python -m optreg"])
def test_optreg_list_command(how: str) -> None:
    cmd = _optreg_command() if how == "console script" else [sys.executable, "-m", "optreg"]
    out = subprocess.run([*cmd, "list"], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    words = set(out.stdout.split())
    assert {"adamw", "sgd", "linear", "cosine"} <= words
