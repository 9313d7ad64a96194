"""Which provider a plain name that several plugins share reaches: the user's preference.

Two third-party distributions providing ``lion`` make plain ``lion`` ambiguous. A
preference names distributions in order; the first one that provides the name wins.
Three places can say it, and the first of them that names a provider of the name decides:

1. ``optreg.prefer("dist", ...)`` at run time (each call replaces the last; no argument
   clears it);
2. the ``OPTREG_PREFER`` environment variable, ``"dist1,dist2"``;
3. ``[tool.optreg] prefer = ["dist1", ...]`` in the ``pyproject.toml`` of the working
   directory or the nearest directory above it that has one (read once per catalog).

A preference only breaks a tie between third parties: a builtin or a name registered at
run time still wins over a plugin's (``dist:name`` reaches the plugin's).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from optreg._core.catalog import current
from optreg._core.entry import normalize_dist

__all__ = ["ENV", "choose", "prefer", "preferences"]

ENV = "OPTREG_PREFER"


def prefer(*dists: str) -> None:
    """Prefer these distributions' plain names, in order, where several plugins share one.

    ``optreg.prefer("optreg-single-optimizers")`` makes plain ``lion`` reach that
    distribution's when another plugin provides ``lion`` too. Each call replaces the
    last; ``optreg.prefer()`` clears it. Outranks ``OPTREG_PREFER`` and pyproject.toml.

    Raises:
        TypeError: a distribution name that is not a non-empty str.
    """
    for dist in dists:
        if not isinstance(dist, str) or not dist.strip():
            raise TypeError(f"optreg.prefer takes distribution names (str), got {dist!r}")
    current().preferred[:] = [normalize_dist(d) for d in dists]


def _pyproject() -> list[tuple[list[str], str]]:
    """``[tool.optreg] prefer`` of the nearest pyproject.toml, once per catalog."""
    catalog = current()
    if catalog.preferred_in_file is not None:
        return catalog.preferred_in_file
    found: list[tuple[list[str], str]] = []
    for folder in (Path.cwd(), *Path.cwd().parents):
        path = folder / "pyproject.toml"
        if path.is_file():
            names = _read_prefer(path)
            if names:
                found.append((names, f"{path} [tool.optreg] prefer"))
            break
    catalog.preferred_in_file = found
    return found


def _read_prefer(path: Path) -> list[str]:
    """The ``[tool.optreg] prefer`` list of ``path``; an unreadable file or a missing table
    is no preference (a broken pyproject.toml is its build tool's error, not optreg's)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10: tomli where installed
        try:
            import tomli as tomllib
        except ImportError:
            return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return []
    tool = data.get("tool")
    table = tool.get("optreg") if isinstance(tool, dict) else None
    value = table.get("prefer") if isinstance(table, dict) else None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    return [normalize_dist(v) for v in value if isinstance(v, str) and v.strip()]


def preferences() -> list[tuple[list[str], str]]:
    """Every preference in force, highest first: ``[(distributions, where it is said)]``."""
    out: list[tuple[list[str], str]] = []
    said = current().preferred
    if said:
        out.append((list(said), "optreg.prefer()"))
    env = os.environ.get(ENV, "")
    names = [normalize_dist(x) for x in env.split(",") if x.strip()]
    if names:
        out.append((names, ENV))
    out.extend(_pyproject())
    return out


def choose(candidates: Sequence[Any]) -> tuple[Any, str] | None:
    """``(entry, where)`` of the candidate a preference picks, or None when none names one.

    Args:
        candidates: entries of one plain name, of equal rank (third parties).
    """
    by_provider = {normalize_dist(e.provider): e for e in candidates}
    for names, where in preferences():
        for name in names:
            if name in by_provider:
                return by_provider[name], where
    return None
