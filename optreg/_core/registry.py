"""Registry: storage of entries, name resolution and conflicts; the two public registries.

A `Registry` maps normalised names to [Entry][optreg.Entry] records. Entries
come from three sources, in order of precedence:

1. ``runtime``: `Registry.register()` (``optreg.register_optimizer``);
2. ``builtin``: optreg's own catalogue (`optreg.builtin`);
3. ``plugin``: entry points and hook plugins of any other installed distribution.

A third party never shadows a builtin: the plain name stays the builtin's and the
third party's entry stays reachable as ``dist:name``. Two third parties with one
name make the plain name ambiguous (`AmbiguousNameError` on use).

The registries are filled by `optreg._plugins.discovery` on first access: a registry
imports it by name then. Loading
targets lives in `optreg._core.loading`, describing entries in `optreg._core.describe`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, overload

from optreg._core import loading as _loading
from optreg._core import prefer as _prefer
from optreg._core.catalog import current
from optreg._core.entry import Entry, EntryInfo, Kind, make_entry, normalize_dist, split_qualified
from optreg._core.errors import AmbiguousNameError, DuplicateNameError, UnknownNameError
from optreg._core.locks import fork_safe_lock
from optreg._core.traits import Traits

__all__ = ["DISCOVERY", "LOCK", "Registry", "optimizers", "schedulers"]

#: The one lock guarding discovery and every registry mutation.
LOCK = fork_safe_lock()

_SOURCE_RANK = {"runtime": 0, "builtin": 1, "plugin": 2}


#: The module that fills the registries (`ensure_discovered()`); a registry imports it by
#: name on first access, as it sits in a room above.
DISCOVERY = "optreg._plugins.discovery"


class Registry(Mapping[str, Entry]):
    """Names of one kind (optimizers or schedulers) mapped to entries.

    A read-only ``Mapping`` over the names it can resolve: ``reg[name]`` returns the
    [Entry][optreg.Entry] (without importing its target) for a plain name, an alias
    or a qualified ``dist:name``; ``iter(reg)`` yields each entry's canonical name
    once, and, for a plain name two third parties provide (ambiguous, refused by
    ``reg[name]``), their qualified names instead. So ``dict(reg)`` always works;
    `conflicts()` reports the shadowed and ambiguous names. The first access
    runs plugin discovery once.

    A registry is a view: its names are the current [Catalog][optreg.Catalog]'s.
    """

    def __init__(self, kind: Kind) -> None:
        self.kind: Kind = kind

    @property
    def _by_key(self) -> dict[str, list[Entry]]:
        """Plain name or alias -> its entries, in the current catalog."""
        return current().entries[self.kind]

    def _ensure(self) -> None:
        """Discover the current catalog's names, once (its flag read first: no import)."""
        if not current().discovery.done:
            import importlib

            importlib.import_module(DISCOVERY).ensure_discovered()

    # -- storage (discovery and registration) -------------------------------

    def _add(self, entry: Entry, *, override: bool = False) -> Entry:
        """Add ``entry``; same-provider conflicts raise, cross-source ones coexist.

        Raises:
            DuplicateNameError: the provider already has the name (or a run-time
                registration would replace a builtin) and ``override`` is False.
        """
        with LOCK:
            keys = (entry.name, *entry.aliases)
            by_key = self._by_key
            clashes = {
                (key, old.qualified_name)
                for key in keys
                for old in by_key.get(key, ())
                if old.provider == entry.provider
                or (entry.source == "runtime" and old.source != "plugin")
            }
            if clashes and not override:
                key, who = sorted(clashes)[0]
                raise DuplicateNameError(
                    f"{self.kind} name {key!r} is already registered (by {who}); "
                    "pass override=True to replace it"
                )
            doomed = {who for _, who in clashes if who == entry.qualified_name}
            if doomed:
                self._drop(lambda e: e.qualified_name in doomed)
            for key in keys:
                by_key.setdefault(key, []).append(entry)
            return entry

    def _remove(self, doomed: Callable[[Entry], bool]) -> None:
        """Remove every entry ``doomed`` selects (under the lock)."""
        with LOCK:
            self._drop(doomed)

    def _drop(self, doomed: Callable[[Entry], bool]) -> None:
        catalog = current()
        by_key = catalog.entries[self.kind]
        for key in list(by_key):
            kept = []
            for e in by_key[key]:
                if doomed(e):
                    catalog.forget(e)
                else:
                    kept.append(e)
            if kept:
                by_key[key] = kept
            else:
                del by_key[key]

    @overload
    def register(
        self,
        name: str,
        factory: None = None,
        *,
        aliases: tuple[str, ...] | list[str] = (),
        description: str | None = None,
        override: bool = False,
        metadata: Mapping[str, Any] | None = None,
        traits: Traits | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]: ...
    @overload
    def register(
        self,
        name: str,
        factory: Callable[..., Any] | str,
        *,
        aliases: tuple[str, ...] | list[str] = (),
        description: str | None = None,
        override: bool = False,
        metadata: Mapping[str, Any] | None = None,
        traits: Traits | None = None,
    ) -> Entry: ...
    def register(
        self,
        name: str,
        factory: Callable[..., Any] | str | None = None,
        *,
        aliases: tuple[str, ...] | list[str] = (),
        description: str | None = None,
        override: bool = False,
        metadata: Mapping[str, Any] | None = None,
        traits: Traits | None = None,
    ) -> Entry | Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register ``factory`` under ``name`` at run time (highest precedence).

        Usable as a decorator when ``factory`` is omitted.

        Args:
            name: the plain name; normalised.
            factory: a callable or a ``"module:attr"`` string.
            aliases: other names for the same entry.
            description: one line for listings (default: first docstring line).
            override: replace an existing runtime or builtin name.
            metadata: free-form facts, shown by ``optreg info``.
            traits: what the name needs from the training loop ([Traits][optreg.Traits]).

        Returns:
            The new [Entry][optreg.Entry], or a decorator returning the factory unchanged.

        Raises:
            ValueError: the name or an alias is not a valid plain name.
            TypeError: ``factory`` is neither callable nor a "module:attr" string.
            DuplicateNameError: the name exists and ``override`` is False.
        """
        if factory is None:
            make_entry(self.kind, name, _check_names_only, aliases=aliases)  # fail early

            def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
                self.register(
                    name,
                    fn,
                    aliases=aliases,
                    description=description,
                    override=override,
                    metadata=metadata,
                    traits=traits,
                )
                return fn

            return decorator
        entry = make_entry(
            self.kind,
            name,
            factory,
            aliases=aliases,
            description=description,
            metadata=metadata,
            traits=traits,
        )
        self._ensure()
        return self._add(entry, override=override)

    def unregister(self, name: str) -> Entry:
        """Remove a name registered at run time and return its entry.

        Raises:
            UnknownNameError: no runtime entry has that name.
        """
        self._ensure()
        _, key = split_qualified(name)
        with LOCK:
            found = [e for e in self._by_key.get(key, ()) if e.source == "runtime"]
            if not found:
                raise UnknownNameError(self.kind, name, self.names())
            entry = found[0]
            self._drop(lambda e: e is entry)
            return entry

    # -- resolution ----------------------------------------------------------
    def resolve(self, name: str) -> Entry:
        """Return the entry a (possibly qualified) name reaches, without importing it.

        Raises:
            TypeError: ``name`` is not a string.
            ValueError: ``name`` is malformed.
            UnknownNameError: nothing answers to ``name``.
            AmbiguousNameError: two third parties provide the plain name.
        """
        self._ensure()
        dist, key = split_qualified(name)
        with LOCK:
            candidates = list(self._by_key.get(key, ()))
        if dist is not None:
            for entry in candidates:
                if normalize_dist(entry.provider) == dist:
                    return entry
            raise UnknownNameError(
                self.kind, name, sorted(e.qualified_name for e in self.entries())
            )
        if not candidates:
            raise UnknownNameError(self.kind, name, self.names(), self._elsewhere(key))
        winners = _winners(key, candidates)
        if len(winners) > 1:
            raise AmbiguousNameError(
                f"{self.kind} name {name!r} is provided by several plugins: "
                + ", ".join(sorted(e.qualified_name for e in winners))
                + "; use one of these qualified names, or prefer a provider: "
                f"optreg.prefer({winners[0].provider!r}), OPTREG_PREFER={winners[0].provider} "
                f"or [tool.optreg] prefer = [{winners[0].provider!r}] in pyproject.toml"
            )
        return winners[0]

    def _elsewhere(self, key: str) -> str | None:
        """The other kind, where the default registry of that kind has ``key``."""
        other = {id(optimizers): schedulers, id(schedulers): optimizers}.get(id(self))
        try:
            return other.kind if other is not None and key in other else None
        except Exception:  # a broken discovery of the other kind: no hint
            return None

    def entries(self) -> list[Entry]:
        """Every entry, shadowed and ambiguous ones included, sorted by name and rank."""
        self._ensure()
        with LOCK:
            unique = {e.qualified_name: e for es in self._by_key.values() for e in es}
        return sorted(unique.values(), key=lambda e: (e.name, _SOURCE_RANK[e.source], e.provider))

    def names(self) -> list[str]:
        """Every name ``reg[name]`` accepts and lists: canonical names, sorted, each once;
        for an ambiguous plain name, the qualified names of its providers."""
        self._ensure()
        with LOCK:
            items = [(k, list(v)) for k, v in self._by_key.items()]
        out: set[str] = set()
        for key, es in items:
            primary = [e for e in es if e.name == key]
            if not primary:
                continue  # an alias only
            winners = _winners(key, primary)
            if len(winners) > 1:
                out.update(e.qualified_name for e in winners)
            else:
                out.add(key)
        return sorted(out)

    def preferred_by(self, name: str) -> str | None:
        """Where the preference is said that makes plain ``name`` reach its provider
        (``"OPTREG_PREFER"``...); None when no preference decides it."""
        self._ensure()
        with LOCK:
            candidates = [e for e in self._by_key.get(name, ()) if e.name == name]
        return preferred_by(name, candidates)

    def conflicts(self) -> tuple[list[tuple[Entry, Entry]], list[tuple[str, list[Entry]]]]:
        """Return ``(shadowed, ambiguous)``.

        ``shadowed`` pairs (winner, loser) where a third party reuses a builtin or
        runtime name; ``ambiguous`` lists plain names two third parties provide.
        """
        self._ensure()
        shadowed: list[tuple[Entry, Entry]] = []
        ambiguous: list[tuple[str, list[Entry]]] = []
        with LOCK:
            items = sorted((k, list(v)) for k, v in self._by_key.items())
        for key, es in items:
            primary = [e for e in es if e.name == key]
            if len({e.provider for e in primary}) < 2:
                continue
            winners = _winners(key, primary)
            if len(winners) > 1:
                ambiguous.append((key, winners))
            else:
                shadowed.extend((winners[0], e) for e in primary if e is not winners[0])
        return shadowed, ambiguous

    # -- loading and description (delegated) --------------------------------
    def load(self, name_or_entry: str | Entry) -> Any:
        """Resolve a name and import its target (once); return the factory.

        Raises:
            UnknownNameError: see `resolve()`.
            AmbiguousNameError: see `resolve()`.
            MissingDependencyError: an optional dependency is not installed.
            PluginLoadError: the target cannot be imported or lacks the attribute.
        """
        entry = name_or_entry if isinstance(name_or_entry, Entry) else self.resolve(name_or_entry)
        return _loading.load(entry)

    def status(self, entry: Entry) -> tuple[bool, str | None]:
        """Return ``(available, reason)`` without importing the target."""
        return _loading.status(entry)

    def info(self, name: str) -> EntryInfo:
        """Describe a name; imports its target to read the signature.

        Raises:
            UnknownNameError: nothing answers to ``name``.
            AmbiguousNameError: two third parties provide the plain name.
        """
        from optreg._core.describe import describe

        return describe(self.resolve(name))

    # -- Mapping protocol ----------------------------------------------------
    def __getitem__(self, name: str) -> Entry:
        return self.resolve(name)

    def __contains__(self, name: object) -> bool:
        try:
            self.resolve(name)  # type: ignore[arg-type]
        except (KeyError, ValueError, TypeError):
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"<optreg Registry of {self.kind}s>"


def _check_names_only(*_: Any) -> None:
    """Placeholder target used to validate a decorator's name and aliases up front."""


def _tied(key: str, candidates: list[Entry]) -> list[Entry]:
    """The entries of the best source rank for a plain ``key``, own names before aliases."""
    best = min(_SOURCE_RANK[e.source] for e in candidates)
    tier = [e for e in candidates if _SOURCE_RANK[e.source] == best]
    named = [e for e in tier if e.name == key] or tier
    unique = {e.qualified_name: e for e in named}
    return [unique[k] for k in sorted(unique)]


def _winners(key: str, candidates: list[Entry]) -> list[Entry]:
    """The entries a plain ``key`` reaches: `_tied()`, a tie broken by the user's
    preference (`optreg._core.prefer`) where one names a provider."""
    tied = _tied(key, candidates)
    if len(tied) > 1:
        picked = _prefer.choose(tied)
        if picked is not None:
            return [picked[0]]
    return tied


def preferred_by(key: str, candidates: list[Entry]) -> str | None:
    """Where the preference that decides plain ``key`` is said; None when none decides it."""
    tied = _tied(key, candidates) if candidates else []
    picked = _prefer.choose(tied) if len(tied) > 1 else None
    return None if picked is None else picked[1]


#: The public registries (``optreg.optimizers`` / ``optreg.schedulers``).
optimizers = Registry("optimizer")
"""The optimizer names: builtins, plugins' and run-time registrations (a `Registry`)."""
schedulers = Registry("scheduler")
"""The scheduler names (a `Registry`)."""
