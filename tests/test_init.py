"""The public front door: __all__, import side effects, version."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

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
        # the transformers integration is transformers' subclasses: it imports it, by design
        if m.name not in ("optreg.__main__", "optreg.integrations.transformers")
    )
    code = "import importlib\n" + "\n".join(f"importlib.import_module({n!r})" for n in names)
    seen = _modules_after(code)
    assert not seen["bitsandbytes"], "a module imports bitsandbytes at import time"
    assert not seen["matplotlib"], "a module imports matplotlib at import time"


def _module_imports(path: Path, module: str) -> set[str]:
    """The optreg modules ``module`` imports at module level (not inside functions)."""
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    nodes = list(tree.body)
    for stmt in tree.body:  # `if TYPE_CHECKING:` imports count: mypy follows them
        if isinstance(stmt, ast.If):
            nodes.extend(stmt.body)
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("optreg")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            if base.startswith("optreg"):
                found.add(base)
                found |= {f"{base}.{a.name}" for a in node.names}
    return found


def test_no_import_cycle_in_the_package() -> None:
    """Module-level imports between optreg's modules form no cycle (a package's
    __init__ importing its own submodules, as optreg.testing does, is not one)."""
    root = Path(optreg.__file__).parent
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph = {
        name: {m for m in _module_imports(path, name) if m in modules and m != name}
        for name, path in modules.items()
    }
    # importing optreg.x.y runs optreg.x first: a submodule depending on its own package
    # __init__ is the normal parent -> child relation, not a cycle
    for name, deps in graph.items():
        deps -= {p for p in deps if name.startswith(p + ".")}

    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycle = [*path[path.index(dep) :], dep] if dep in path else [node, dep]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert "optreg._plugins.discovery" in graph["optreg._build.api"]  # the graph is really read


#: The package's rooms from the bottom up: a module may import its own room and those
#: below it, never one above (the README's Architecture section draws the same order).
ROOMS = (
    "_core",
    "params",
    "hookspecs",
    "builtin",
    "_plugins",
    "_build",
    "optim",
    "_checkpoint",
    "_policies",
    "integrations",
    "cli",
    "__main__",
    "testing",
)


def _package_modules() -> dict[str, Path]:
    root = Path(optreg.__file__).parent
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def test_every_import_points_down_the_rooms() -> None:
    modules = _package_modules()
    rooms = {name: name.split(".")[1] for name in modules if name != "optreg"}
    assert set(rooms.values()) == set(ROOMS)  # a new room is placed here on purpose
    up = []
    for name, room in sorted(rooms.items()):
        for dep in sorted(_module_imports(modules[name], name)):
            if dep in rooms and ROOMS.index(rooms[dep]) > ROOMS.index(room):
                up.append(f"{name} -> {dep}")
    assert up == [], "imports that point up the rooms:\n" + "\n".join(up)


def test_the_top_of_the_package_is_public_modules_and_rooms() -> None:
    root = Path(optreg.__file__).parent
    private_files = sorted(
        p.name
        for p in root.glob("*.py")
        if p.name.startswith("_") and p.stem not in ("__init__", "__main__")
    )
    assert private_files == [], "a private module at the top of optreg/ belongs in a room"
    assert {p.name for p in root.iterdir() if p.is_dir() and p.name != "__pycache__"} == {
        r for r in ROOMS if (root / r).is_dir()
    }


def test_no_library_module_is_over_600_lines() -> None:
    """One concept per module, not a line cap: a module this long has likely taken a
    second job (the layout is docs/architecture.md)."""
    long = {
        str(path.relative_to(path.parents[len(name.split(".")) - 1])): n
        for name, path in _package_modules().items()
        if (n := len(path.read_text().splitlines())) > 600
    }
    assert long == {}, "a module this long holds more than one job: split it by job"


#: Module-level maps that are changed at run time outside the catalog, each a memo of a
#: pure function of an immutable key (held weakly): it can never change an answer, only
#: spare recomputing it, so it needs no owner and no reset.
MEMOS = {
    ("optreg._core.entry", "_PARSED"): "a distribution's parsed metadata, by Distribution",
    ("optreg._core.signature", "_READ"): "a factory's inspect.Signature, by factory",
    ("optreg.builtin.capabilities", "_PUBLISHED"): "a plugin's published table, by Distribution",
}
_MUTATORS = {"append", "add", "update", "clear", "setdefault", "pop", "remove", "extend",
             "insert", "discard", "popitem"}  # fmt: skip


def _changed_module_names(path: Path) -> set[str]:
    """Module-level names the module's functions rebind (``global``) or change in place."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {
        t.id
        for node in tree.body
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(t, ast.Name)
    }
    changed: set[str] = set()
    for func in ast.walk(tree):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.Global):
                changed.update(node.names)
            elif isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete)):
                targets = (
                    node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
                )
                for t in targets:
                    base = t.value if isinstance(t, ast.Subscript) else None
                    if isinstance(base, ast.Name):
                        changed.add(base.id)
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in _MUTATORS
                and isinstance(node.func.value, ast.Name)
            ):
                changed.add(node.func.value.id)
    return changed & top


def test_process_state_lives_in_the_catalog_module_alone() -> None:
    """One object owns what optreg keeps between calls (optreg.Catalog); a module-level
    name that functions change is state, and its only home is optreg._core.catalog."""
    found = {
        (name, changed)
        for name, path in _package_modules().items()
        if name != "optreg._core.catalog"
        for changed in _changed_module_names(path)
    }
    assert found - set(MEMOS) == set(), "module-level state outside optreg._core.catalog"
    assert set(MEMOS) <= found  # each memo listed is still one (else drop it from MEMOS)
