"""Catalog: everything optreg keeps for the process, in one object.

A [Catalog][optreg.Catalog] holds the names of both kinds, one slot per entry (its
loaded factory, its contract, why it is broken, whether its factory has run), the
preferences said at run time, the plugin manager with its callers and problems, and the
classes [optreg.optim][] made. Every module function reads the *current* catalog: the
one a ``with catalog:`` block activates in this thread (or task), else the process's
default. Nothing else in optreg keeps state between calls, so a fresh catalog is a
fresh optreg: `optreg.testing.isolated_registry` installs one as the default for a
test, and a restricted one (``Catalog(plugins=[...])``) offers only the names of the
plugins it lists.

What an object optreg built was built from (its record) belongs to the object, not to
a catalog: the weak maps of `RECORDS` are shared by every catalog, so an optimizer built
in a ``with catalog:`` block is saved and explained outside it too.
"""

from __future__ import annotations

import contextvars
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from optreg._core.entry import Entry, Kind, normalize_dist

if TYPE_CHECKING:
    from optreg._core.contract import FactoryContract

__all__ = ["RECORDS", "Catalog", "Discovery", "Slot", "current", "install"]

#: What optreg built, keyed by the object (weakly: a record never keeps one alive), per
#: kind (`optreg._build.records`' typed records); shared by every catalog (a record
#: belongs to the object).
RECORDS: dict[Kind, weakref.WeakKeyDictionary[Any, Any]] = {
    "optimizer": weakref.WeakKeyDictionary(),
    "scheduler": weakref.WeakKeyDictionary(),
}


@dataclass(eq=False)
class Slot:
    """What a catalog learnt of one entry, each fact once.

    Attributes:
        factory: the loaded target, once loaded.
        loaded: whether ``factory`` is set (a factory may be any callable).
        contract: the factory contract, once read.
        broken: why the target cannot be loaded, once that was found.
        called: whether the factory has run once (its first call imports lazily).
    """

    factory: Any = None
    loaded: bool = False
    contract: FactoryContract | None = None
    broken: str | None = None
    called: bool = False


@dataclass(eq=False)
class Discovery:
    """A catalog's plugin discovery: done once, then its manager, plugins and problems.

    Attributes:
        done: discovery has completed.
        running: discovery is running (a hook reading the registry re-enters).
        pm: the pluggy ``PluginManager``, once discovery started.
        problems: the plugins that failed (``optreg._plugins.discovery.PluginProblem``).
        plugins: pluggy plugin name -> (distribution name, importlib-metadata Distribution).
        callers: hook name -> (its implementations when cached, [(plugin name, caller of
            that plugin's implementation only)]).
    """

    done: bool = False
    running: bool = False
    pm: Any = None
    problems: list[Any] = field(default_factory=list)
    plugins: dict[str, tuple[str, Any]] = field(default_factory=dict)
    callers: dict[str, tuple[tuple[Any, ...], list[tuple[str, Callable[..., Any]]]]] = field(
        default_factory=dict
    )


class Catalog:
    """A set of names and everything optreg learnt of them: what the module functions use.

    The process has a default catalog; ``with catalog:`` makes another one current for
    the block (in this thread or asyncio task), so [optreg.get_optimizer][],
    [optreg.get_scheduler][], the listings and the integrations reach its names alone::

        vetted = optreg.Catalog(plugins=["optreg:torch_optim", "optreg:schedules"])
        with vetted:
            optimizer = optreg.get_optimizer("adamw", model, lr=1e-3)
            optreg.get_optimizer("adamw_8bit", model)  # UnknownNameError: not offered

    Args:
        plugins: the plugins whose names it offers, or None for the default rule (every
            installed plugin, under ``OPTREG_PLUGINS``, ``OPTREG_DISABLE_PLUGIN_AUTOLOAD``
            and ``OPTREG_BLOCK_PLUGINS``). Each item is a builtin plugin as
            ``optreg:<plugin>`` (``optreg:torch_optim``, ``optreg:schedules``,
            ``optreg:adamw``, ``optreg:adafactor``, ``optreg:bnb``), a distribution name,
            or ``dist:entry-point``. ``OPTREG_BLOCK_PLUGINS`` still applies; names
            registered at run time in the block are offered too.

    Raises:
        TypeError: ``plugins`` is a string or holds something that is not a non-empty str.
    """

    def __init__(self, plugins: Iterable[str] | None = None) -> None:
        if isinstance(plugins, str):
            raise TypeError(
                f"Catalog(plugins=...) takes a list of plugin names, got the str {plugins!r}; "
                f"write plugins=[{plugins!r}]"
            )
        only: frozenset[str] | None = None
        if plugins is not None:
            items = list(plugins)
            for item in items:
                if not isinstance(item, str) or not item.strip():
                    raise TypeError(
                        "Catalog(plugins=...) takes plugin names (non-empty str: "
                        f"'optreg:torch_optim', a distribution, 'dist:entry-point'), got {item!r}"
                    )
            only = frozenset(plugin_key(item) for item in items)
        #: the plugins it offers (normalised), or None for the default rule
        self.only = only
        #: plain name or alias -> the entries answering to it, per kind
        self.entries: dict[Kind, dict[str, list[Entry]]] = {"optimizer": {}, "scheduler": {}}
        #: what was learnt of each entry it holds
        self.slots: dict[Entry, Slot] = {}
        #: ``optreg.prefer()``'s distributions, normalised
        self.preferred: list[str] = []
        #: ``[tool.optreg] prefer`` of the nearest pyproject.toml, once read
        self.preferred_in_file: list[tuple[list[str], str]] | None = None
        self.discovery = Discovery()
        #: ``optreg.optim``'s classes, by attribute name
        self.classes: dict[str, type[Any]] = {}

    def slot(self, entry: Entry) -> Slot:
        """The slot of ``entry``, made on first use."""
        found = self.slots.get(entry)
        if found is None:
            found = self.slots[entry] = Slot()
        return found

    def forget(self, entry: Entry) -> None:
        """Forget what was learnt of ``entry`` (unregistered or replaced)."""
        self.slots.pop(entry, None)

    def restart(self) -> None:
        """Forget every name and everything discovered (an interrupted discovery): the next
        access discovers afresh. Preferences said at run time are kept."""
        for names in self.entries.values():
            names.clear()
        self.slots.clear()
        self.discovery = Discovery()
        self.classes.clear()

    def __enter__(self) -> Catalog:
        token = _ACTIVE.set(self)
        _ENTERED.set((*_ENTERED.get(), token))  # per thread and task, as the catalog is
        return self

    def __exit__(self, *exc: object) -> None:
        *outer, token = _ENTERED.get()
        _ENTERED.set(tuple(outer))
        _ACTIVE.reset(token)

    def __repr__(self) -> str:
        offered = "every installed plugin" if self.only is None else ", ".join(sorted(self.only))
        state = "discovered" if self.discovery.done else "not yet discovered"
        return f"<optreg Catalog of {offered} ({state})>"


def plugin_key(name: str) -> str:
    """A plugin as discovery compares it: ``dist`` or ``dist:entry_point``, normalised."""
    dist, sep, ep = name.strip().partition(":")
    if not sep:
        return normalize_dist(dist)
    return f"{normalize_dist(dist)}:{ep.strip().lower().replace('-', '_')}"


_ACTIVE: contextvars.ContextVar[Catalog | None] = contextvars.ContextVar(
    "optreg_catalog", default=None
)
_ENTERED: contextvars.ContextVar[tuple[contextvars.Token[Catalog | None], ...]] = (
    contextvars.ContextVar("optreg_catalogs_entered", default=())
)
_DEFAULT = [Catalog()]


def current() -> Catalog:
    """The catalog a ``with catalog:`` block made current here, else the default."""
    return _ACTIVE.get() or _DEFAULT[0]


def install(catalog: Catalog) -> Catalog:
    """Make ``catalog`` the process's default; return the one it replaces (to put back)."""
    previous, _DEFAULT[0] = _DEFAULT[0], catalog
    return previous
