"""Build optreg's sdist and wheel, install the wheel into a clean venv, and test it there.

Run by ``tox -e pkg`` (``python tools/check_wheel.py [WORKDIR]``; WORKDIR, outside the
source tree, is kept for inspection, a temporary directory is removed after success):

1. ``python -m build``: the sdist, then the wheel built *from the sdist* (so a file
   missing from the sdist breaks the wheel too);
2. check what each archive holds: every module of the package, ``py.typed``, the
   capability table, the README the metadata points to, nothing but ``optreg`` at the
   wheel's top level;
3. create a fresh virtual environment, ``pip install "<wheel>[test]"`` (pip honours
   ``PIP_CONSTRAINT``, so torch is pinned the same way as in the other environments);
4. copy ``tests/test_packaging.py`` to a directory outside the source tree and run it
   there with the venv's pytest, ``-W error`` and ``OPTREG_PKG_CHECK=wheel``: metadata against
   ``pyproject.toml``, entry points, ``py.typed``, a smoke test, ``optreg list``.

Exits non-zero on the first problem.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(
    cmd: list[str | Path], *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> None:
    """Run ``cmd``, echoing it; raise ``SystemExit`` naming it if it fails."""
    print("+", " ".join(str(c) for c in cmd), flush=True)
    start = time.monotonic()
    code = subprocess.call([str(c) for c in cmd], cwd=cwd, env=env)
    print(f"  ({time.monotonic() - start:.0f} s)", flush=True)
    if code:
        raise SystemExit(f"check_wheel: {cmd[0]} exited with {code}")


def fail(message: str) -> None:
    """Stop with a message naming what is wrong."""
    raise SystemExit(f"check_wheel: {message}")


def expected_package_files() -> set[str]:
    """Every file the ``optreg`` package must ship: its modules, ``py.typed`` and the
    builtins' measured capability table."""
    pkg = ROOT / "optreg"
    files = {p.relative_to(ROOT).as_posix() for p in pkg.rglob("*.py")}
    files |= {"optreg/py.typed", "optreg/builtin/capabilities.json"}
    return files


def only(paths: list[Path], what: str) -> Path:
    """The single path in ``paths``."""
    if len(paths) != 1:
        fail(f"expected one {what}, found {[p.name for p in paths]}")
    return paths[0]


def check_sdist(sdist: Path) -> None:
    """The sdist holds the package, pyproject.toml, the README and the tests."""
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    needed = expected_package_files() | {"pyproject.toml", "README.md", "PKG-INFO"}
    needed.add("tests/test_packaging.py")
    if missing := sorted(needed - names):
        fail(f"{sdist.name} lacks {missing}")
    print(f"sdist ok: {sdist.name} ({len(names)} entries)")


def check_wheel(wheel: Path) -> None:
    """The wheel holds the whole package and nothing besides it and its dist-info."""
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        dist_info = {n.split("/")[0] for n in names if ".dist-info/" in n}
        if len(dist_info) != 1:
            fail(f"{wheel.name} has dist-info folders {sorted(dist_info)}")
        info = dist_info.pop()
        for meta in ("METADATA", "entry_points.txt", "RECORD", "WHEEL"):
            if f"{info}/{meta}" not in names:
                fail(f"{wheel.name} lacks {info}/{meta}")
        metadata = zf.read(f"{info}/METADATA").decode()
    if missing := sorted(expected_package_files() - names):
        fail(f"{wheel.name} lacks {missing}")
    top = {n.split("/")[0] for n in names} - {info}
    if top != {"optreg"}:
        fail(f"{wheel.name} installs more than optreg: {sorted(top)}")
    if "Description-Content-Type: text/markdown" not in metadata:
        fail("METADATA does not declare the README as markdown")
    print(f"wheel ok: {wheel.name} ({len(names)} files)")


def venv_python(env: Path) -> Path:
    """The interpreter of the virtual environment ``env``."""
    if sys.platform == "win32":
        return env / "Scripts" / "python.exe"
    return env / "bin" / "python"


def main(argv: list[str]) -> int:
    """Build, inspect, install and smoke-test, in ``argv[1]`` or a temporary directory."""
    keep = len(argv) > 1
    work = Path(argv[1]).resolve() if keep else Path(tempfile.mkdtemp(prefix="optreg-pkg-"))
    if work == ROOT or ROOT in work.parents or work in ROOT.parents:
        fail(f"the work directory must lie outside the source tree {ROOT}, got {work}")
    shutil.rmtree(work, ignore_errors=True)
    dist = work / "dist"
    run([sys.executable, "-m", "build", "--outdir", dist, ROOT])
    sdist = only(sorted(dist.glob("optreg-*.tar.gz")), "sdist")
    wheel = only(sorted(dist.glob("optreg-*.whl")), "wheel")
    check_sdist(sdist)
    check_wheel(wheel)

    env = work / "venv"
    print(f"+ python -m venv {env}", flush=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(env)
    python = venv_python(env)
    run([python, "-m", "pip", "install", "-qq", f"{wheel}[test]"])

    # The smoke test runs from a directory of its own, with a pytest.ini of its own: the
    # source tree's conftest.py, pytest settings and modules play no part.
    smoke = work / "smoke"
    smoke.mkdir()
    shutil.copy(ROOT / "tests" / "test_packaging.py", smoke / "test_packaging.py")
    # torch warns on import when numpy is missing (torch does not require numpy, and the
    # clean venv has none); that warning is torch's, every other one is an error.
    (smoke / "pytest.ini").write_text(
        "[pytest]\n"
        "filterwarnings =\n    error\n    ignore:Failed to initialize NumPy:UserWarning\n"
        "addopts = -ra --strict-markers -p no:cacheprovider\n"
    )
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    environ.update(OPTREG_PKG_CHECK="wheel", OPTREG_PYPROJECT=str(ROOT / "pyproject.toml"))
    run(
        [python, "-m", "pytest", "-c", smoke / "pytest.ini", "test_packaging.py"],
        cwd=smoke,
        env=environ,
    )
    print(f"check_wheel: {wheel.name} and {sdist.name} pass")
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
