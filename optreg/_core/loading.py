"""Loading entries: import a ``"module:attr"`` target once, and tell availability without importing.

`load()` resolves an entry's target (cached per entry) and turns failures into
[PluginLoadError][optreg.PluginLoadError] (chained) or [MissingDependencyError][optreg.MissingDependencyError];
`status()` says whether an entry can be loaded, from its declared requirements
and the target's top-level module, without importing either.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import re
import sys
from collections.abc import Callable
from typing import Any

from optreg._core.catalog import current
from optreg._core.contract import FactoryContract, contract_of
from optreg._core.entry import Entry, dist_requires
from optreg._core.errors import MissingDependencyError, PluginLoadError
from optreg._core.locks import fork_safe_lock
from optreg._core.signature import signature

__all__ = [
    "contract",
    "first_call",
    "import_heavy",
    "load",
    "missing_requirement",
    "status",
]

#: Held while a target is imported and while an entry's factory runs for the first time.
#: Those first calls import lazily (bitsandbytes imports torch._inductor, torch's first
#: optimizer imports torch._dynamo), and two such imports racing in two threads break
#: the process ("partially initialized module 'torch._inductor.utils'"); through optreg
#: they happen one at a time.
_IMPORT_LOCK = fork_safe_lock()


def import_target(ref: str) -> Any:
    """Import ``"module:attr.sub"`` and return the attribute."""
    module_name, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module_name.strip())
    for part in filter(None, attr.strip().split(".")):
        obj = getattr(obj, part)
    return obj


def load(entry: Entry) -> Any:
    """Return the entry's factory, importing its target on first use (kept in the current
    catalog's slot of the entry).

    Raises:
        MissingDependencyError: a declared requirement is not installed (or too old).
        PluginLoadError: the target cannot be imported or lacks the attribute.
    """
    slot = current().slot(entry)
    if slot.loaded:
        return slot.factory
    missing = missing_requirement(entry)
    if missing:
        raise MissingDependencyError(missing)
    where = f" (entry point {entry.entry_point})" if entry.entry_point else ""
    what = f"{entry.kind} {entry.name!r} from distribution {entry.provider!r}{where}"
    if callable(entry.target):
        factory = entry.target
    else:
        try:
            with _IMPORT_LOCK:
                factory = import_target(entry.target)
        except (Exception, SystemExit) as e:  # a plugin's sys.exit() is contained too
            slot.broken = msg = f"{what}: cannot load {entry.target!r}: {type(e).__name__}: {e}"
            raise PluginLoadError(msg) from e
        if not callable(factory):
            slot.broken = msg = (
                f"{what}: target {entry.target!r} is {type(factory).__name__} "
                f"{factory!r:.60}, not a callable factory"
            )
            raise PluginLoadError(msg)
    slot.factory, slot.loaded = factory, True
    return factory


def contract(entry: Entry) -> FactoryContract:
    """The factory contract of ``entry`` ([optreg.FactoryContract][]), read once when
    it is first asked for (loading the factory and reading its signature) and kept with
    it: what every use of a name (a build, ``optreg info``, ``optreg check``) asks first.

    Raises:
        MissingDependencyError, PluginLoadError: see `load()`; a PluginLoadError too
            when ``optreg_contract`` is not a FactoryContract.
    """
    slot = current().slot(entry)
    if slot.contract is not None:
        return slot.contract
    factory = load(entry)
    if entry.source != "builtin":  # the builtins' cannot raise (bnb's is None without bnb)
        _probe_signature(entry, factory)
    try:
        declared = contract_of(factory)
    except TypeError as e:
        slot.broken = msg = f"{entry.kind} {entry.name!r} from distribution {entry.provider!r}: {e}"
        raise PluginLoadError(msg) from e
    slot.contract = declared
    return declared


def _probe_signature(entry: Entry, factory: Any) -> None:
    """Read the factory's signature before it is used (a name is built, described or
    checked): a factory that computes it from its library (optreg-timm's, which stays
    unimported until then) fails there when the library does not load, and that is the
    plugin's failure, not the caller's. No readable signature is fine.

    Raises:
        PluginLoadError: reading the signature raised something else.
    """
    try:
        with _IMPORT_LOCK:
            signature(factory)  # the one read every later question of it uses
    except (Exception, SystemExit) as e:
        where = f" (entry point {entry.entry_point})" if entry.entry_point else ""
        what = f"{entry.kind} {entry.name!r} from distribution {entry.provider!r}{where}"
        current().slot(entry).broken = msg = (
            f"{what}: the signature of {entry.target_ref} cannot be read: {type(e).__name__}: {e}"
        )
        raise PluginLoadError(msg) from e


@functools.cache  # once per process (a failure is not cached: the next call retries)
def _warm_torch() -> None:
    """Build and step one throwaway torch optimizer: torch imports ``torch._dynamo`` and
    more (about 800 modules) on the first optimizer it builds; done here, under the
    lock, no optimizer another thread builds or steps meets a half-imported module."""
    import torch

    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.0)
    p.grad = torch.zeros(1)
    opt.step()


def import_heavy(name: str) -> Any:
    """Import a module whose import reaches into torch's lazily imported parts
    (bitsandbytes compiles kernels with ``torch.compile`` at import): under the import
    lock, after torch's own lazy imports. Every optreg path that imports such a
    library goes through here or `first_call()`."""
    _check_parents(name)
    module = sys.modules.get(name)
    if module is not None:
        return module
    with _IMPORT_LOCK:
        _warm_torch()
        return importlib.import_module(name)


def _check_parents(name: str) -> None:
    """Refuse ``name`` when a parent package is marked not importable (``None`` in
    ``sys.modules``), as ``import`` does: a submodule imported before the mark stays in
    ``sys.modules``, and ``importlib.import_module`` would hand it out.

    Raises:
        ModuleNotFoundError: a parent package is marked not importable.
    """
    parts = name.split(".")
    for i in range(1, len(parts)):
        parent = ".".join(parts[:i])
        if parent in sys.modules and sys.modules[parent] is None:
            raise ModuleNotFoundError(
                f"import of {parent} halted; None in sys.modules", name=parent
            )


def first_call(entry: Entry, factory: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``factory``; the first call per entry runs under the import lock (after torch's
    own lazy imports are done)."""
    slot = current().slot(entry)
    if slot.called:
        return factory(*args, **kwargs)
    with _IMPORT_LOCK:
        _warm_torch()
        result = factory(*args, **kwargs)
        slot.called = True
    return result


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text.split("+")[0])[:3])


def _installed(module: str) -> bool:
    """Whether ``module``'s top-level package can be imported; runs no code of it (a dotted
    name is judged by its top-level package: finding a submodule would import the parent)."""
    top = module.split(".")[0]
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):  # a broken or half-imported module
        return False


def install_hint(entry: Entry, module: str) -> str:
    """What to ``pip install`` for a missing requirement ``module`` of ``entry``.

    The providing distribution's extra when the entry names one (``optreg[bnb]``), else
    the requirement of that distribution that installs ``module`` (its ``Requires-Dist``
    whose name matches: ``lion-pytorch>=0.1`` for ``lion_pytorch``), else ``module``. An
    An entry's ``traits.install`` (a command) says it instead, for a package that pip
    cannot find by its module name.
    """
    if entry.traits.install:
        return entry.traits.install
    if entry.extra:
        return f'pip install "{entry.project}[{entry.extra}]"'
    wanted = _canonical(module.split(".")[0])
    declared = dist_requires(entry.dist) if entry.dist is not None else []
    for requirement in declared:
        spec = requirement.split(";")[0].strip()
        name = re.split(r"[\s\[<>=!~(]", spec, maxsplit=1)[0]
        if _canonical(name) == wanted:
            return f'pip install "{spec}"'
    return f"pip install {module.split('.')[0]}"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def missing_requirement(entry: Entry) -> str | None:
    """Why the entry's requirements are not met (``None`` when they are); imports nothing."""
    for req in entry.requires:
        module, _, minimum = (part.strip() for part in req.partition(">="))
        if not _installed(module):
            return (
                f"{entry.kind} {entry.name!r} needs {module}, which is not installed; "
                f"install it with: {install_hint(entry, module)}"
            )
        if minimum:
            from importlib.metadata import PackageNotFoundError, version

            try:
                have = version(module)
            except PackageNotFoundError:
                continue  # importable without metadata (a source tree): assume it is recent
            if _version_tuple(have) < _version_tuple(minimum):
                return (
                    f"{entry.kind} {entry.name!r} needs {module}>={minimum}, "
                    f"but {module} {have} is installed"
                )
    return None


def status(entry: Entry) -> tuple[bool, str | None]:
    """Return ``(available, reason)`` without importing the target."""
    slot = current().slots.get(entry)
    broken = slot.broken if slot is not None else None
    if broken:
        return False, broken
    missing = missing_requirement(entry)
    if missing is None and isinstance(entry.target, str):
        top = entry.target.partition(":")[0].split(".")[0].strip()
        if not _installed(top):
            missing = (
                f"module {top!r} of target {entry.target!r} is not installed; install it "
                f"with: {install_hint(entry, top)}"
            )
    return (missing is None), missing
