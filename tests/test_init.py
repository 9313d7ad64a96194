"""The public front door: __all__, import side effects, version."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import optreg


def test_all_is_sorted_and_complete() -> None:
    assert optreg.__all__ == sorted(optreg.__all__)
    for name in optreg.__all__:
        assert getattr(optreg, name) is not None
    public = {
        n
        for n in vars(optreg)
        if not n.startswith("_") and not isinstance(getattr(optreg, n), type(optreg))
    }
    assert public - {"annotations", "Any", "TYPE_CHECKING"} <= set(optreg.__all__)


def test_hookimpl_and_version() -> None:
    assert optreg.hookimpl.project_name == "optreg"
    assert optreg.__version__.count(".") >= 2


def _modules_after(code: str) -> dict[str, bool]:
    watched = ["torch", "pluggy", "importlib_metadata", "bitsandbytes", "matplotlib", "tqdm"]
    out = subprocess.run(
        [
            sys.executable,
            "-W",
            "error",
            "-c",
            f"import sys, json\n{code}\nprint(json.dumps({{m: m in sys.modules for m in {watched!r}}}))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout))


def test_import_optreg_has_no_side_effects() -> None:
    seen = _modules_after("import optreg")
    assert seen == {m: False for m in seen}, seen


def test_listing_imports_no_optional_dependency() -> None:
    seen = _modules_after("import optreg; optreg.list_optimizers(); optreg.list_schedulers()")
    assert not seen["bitsandbytes"]
    assert not seen["matplotlib"]


def test_every_module_imports_cleanly_without_optional_dependencies() -> None:
    names = sorted(
        m.name
        for m in pkgutil.walk_packages(optreg.__path__, "optreg.")
        if m.name != "optreg.__main__"
    )
    code = "import importlib\n" + "\n".join(f"importlib.import_module({n!r})" for n in names)
    seen = _modules_after(code)
    assert not seen["bitsandbytes"], "a module imports bitsandbytes at import time"
    assert not seen["matplotlib"], "a module imports matplotlib at import time"
