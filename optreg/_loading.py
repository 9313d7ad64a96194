"""Loading entries: import a ``"module:attr"`` target once, and tell availability without importing.

:func:`load` resolves an entry's target (cached per entry) and turns failures into
:class:`~optreg.PluginLoadError` (chained) or :class:`~optreg.MissingDependencyError`;
:func:`status` says whether an entry can be loaded, from its declared requirements
and the target's top-level module, without importing either.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from typing import Any

from optreg._entry import Entry
from optreg._errors import MissingDependencyError, PluginLoadError

__all__ = ["clear", "load", "missing_requirement", "status"]

_loaded: dict[Entry, Any] = {}
_broken: dict[Entry, str] = {}


def clear() -> None:
    """Forget every loaded target and every recorded load failure."""
    _loaded.clear()
    _broken.clear()


def import_target(ref: str) -> Any:
    """Import ``"module:attr.sub"`` and return the attribute."""
    module_name, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module_name.strip())
    for part in filter(None, attr.strip().split(".")):
        obj = getattr(obj, part)
    return obj


def load(entry: Entry) -> Any:
    """Return the entry's factory, importing its target on first use.

    Raises:
        MissingDependencyError: a declared requirement is not installed (or too old).
        PluginLoadError: the target cannot be imported or lacks the attribute.
    """
    try:
        return _loaded[entry]
    except KeyError:
        pass
    missing = missing_requirement(entry)
    if missing:
        raise MissingDependencyError(missing)
    if callable(entry.target):
        factory = entry.target
    else:
        try:
            factory = import_target(entry.target)
        except Exception as e:
            where = f" (entry point {entry.entry_point})" if entry.entry_point else ""
            msg = (
                f"{entry.kind} {entry.name!r} from distribution {entry.provider!r}{where}: "
                f"cannot load {entry.target!r}: {type(e).__name__}: {e}"
            )
            _broken[entry] = msg
            raise PluginLoadError(msg) from e
    _loaded[entry] = factory
    return factory


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text.split("+")[0])[:3])


def missing_requirement(entry: Entry) -> str | None:
    """Why the entry's requirements are not met (``None`` when they are); imports nothing."""
    for req in entry.requires:
        module, _, minimum = (part.strip() for part in req.partition(">="))
        if importlib.util.find_spec(module) is None:
            hint = (
                f'pip install "optreg[{entry.extra}]"' if entry.extra else f"pip install {module}"
            )
            return (
                f"{entry.kind} {entry.name!r} needs {module}, which is not installed; "
                f"install it with: {hint}"
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
    broken = _broken.get(entry)
    if broken:
        return False, broken
    missing = missing_requirement(entry)
    if missing is None and isinstance(entry.target, str):
        top = entry.target.partition(":")[0].split(".")[0].strip()
        if importlib.util.find_spec(top) is None:
            missing = f"module {top!r} of target {entry.target!r} is not installed"
    return (missing is None), missing
