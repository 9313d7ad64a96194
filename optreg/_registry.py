"""Registry and Entry: names, aliases, normalisation, lazy targets, conflicts.

A :class:`Registry` maps normalised names to :class:`Entry` records. Entries come
from three sources, in order of precedence:

1. ``runtime``: :meth:`Registry.register` (``optreg.register_optimizer``);
2. ``builtin``: entry points of the ``optreg`` distribution itself;
3. ``plugin``: entry points of any other installed distribution.

A third party never shadows a builtin: the plain name stays the builtin's and the
third party's entry stays reachable as ``dist:name``. Two third parties with one
name make the plain name ambiguous (:class:`AmbiguousNameError` on use).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, overload

from optreg._errors import (
    AmbiguousNameError,
    DuplicateNameError,
    MissingDependencyError,
    PluginLoadError,
    UnknownNameError,
)

__all__ = ["Entry", "EntryInfo", "Registry", "normalize_dist", "normalize_name"]

#: The one lock guarding discovery and every registry mutation.
LOCK = threading.RLock()

Kind = Literal["optimizer", "scheduler"]
Source = Literal["runtime", "builtin", "plugin"]
_SOURCE_RANK = {"runtime": 0, "builtin": 1, "plugin": 2}
_NAME_RE = re.compile(r"^[a-z0-9_][a-z0-9_.]*$")
BUILTIN_DIST = "optreg"
RUNTIME_PROVIDER = "__runtime__"


def normalize_name(name: object, *, what: str = "name") -> str:
    """Return the canonical form of a plain name.

    Case-insensitive, ``-`` and ``_`` equal, surrounding blanks ignored.

    Raises:
        TypeError: ``name`` is not a string.
        ValueError: ``name`` is empty, contains ``:`` or is not identifier-like.
    """
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str, got {type(name).__name__}: {name!r}")
    key = name.strip().lower().replace("-", "_")
    if not key:
        raise ValueError(f"{what} must be a non-empty string, got {name!r}")
    if ":" in key:
        raise ValueError(
            f"{what} {name!r} contains ':', which is reserved for qualified names "
            "('dist:name'); use letters, digits, '_', '-' and '.'"
        )
    if not _NAME_RE.match(key):
        raise ValueError(f"invalid {what} {name!r}: use letters, digits, '_', '-' and '.' only")
    return key


def normalize_dist(dist: str) -> str:
    """Normalise a distribution name the way qualified names compare them."""
    return re.sub(r"[-_.]+", "_", dist.strip()).lower()


@dataclass(frozen=True)
class Entry:
    """One registered optimizer or scheduler.

    Attributes:
        name: canonical (normalised) name.
        kind: ``"optimizer"`` or ``"scheduler"``.
        target: a callable, or a ``"module:attr"`` string imported on first use.
        provider: normalised distribution name (``"optreg"`` for builtins,
            ``"__runtime__"`` for names registered at run time).
        source: ``"runtime"``, ``"builtin"`` or ``"plugin"``.
        aliases: other names (normalised) that reach this entry.
        description: one line for listings.
        requires: top-level modules the target needs (checked without importing).
        extra: the ``optreg`` pip extra that installs ``requires``.
        metadata: free-form facts a trainer may need (read-only mapping).
        entry_point: ``"group: name = value"`` for error messages, when discovered.
        dist: the importlib-metadata Distribution (version is read lazily).
    """

    name: str
    kind: Kind
    target: str | Callable[..., Any]
    provider: str = RUNTIME_PROVIDER
    source: Source = "runtime"
    aliases: tuple[str, ...] = ()
    description: str = ""
    requires: tuple[str, ...] = ()
    extra: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), compare=False)
    entry_point: str | None = None
    dist: Any = field(default=None, compare=False, repr=False)

    @property
    def qualified_name(self) -> str:
        """``provider:name``, the spelling that always reaches this entry."""
        return f"{self.provider}:{self.name}"

    @property
    def target_ref(self) -> str:
        """The target as a ``"module:attr"`` string."""
        if isinstance(self.target, str):
            return self.target
        mod = getattr(self.target, "__module__", "?")
        qual = getattr(self.target, "__qualname__", type(self.target).__qualname__)
        return f"{mod}:{qual}"

    @property
    def version(self) -> str | None:
        """Version of the providing distribution, if known."""
        if self.dist is None:
            return None
        try:
            return str(self.dist.version)
        except Exception:  # pragma: no cover - a corrupt METADATA file
            return None


@dataclass(frozen=True)
class EntryInfo:
    """What ``optimizer_info`` / ``scheduler_info`` report about a name."""

    name: str
    kind: str
    aliases: tuple[str, ...]
    provider: str
    version: str | None
    target: str
    description: str
    available: bool
    reason: str | None
    required_args: tuple[str, ...]
    signature: str | None
    doc: str
    metadata: Mapping[str, Any]
    qualified_name: str


def _import_target(ref: str) -> Any:
    module_name, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def _split_qualified(name: str) -> tuple[str | None, str]:
    if isinstance(name, str) and ":" in name:
        dist, _, plain = name.partition(":")
        try:
            return normalize_dist(dist), normalize_name(plain)
        except ValueError as e:  # show the whole qualified name, not just its tail
            raise ValueError(f"invalid qualified name {name!r} ('dist:name'): {e}") from e
    return None, normalize_name(name)


class Registry(Mapping[str, Entry]):
    """Names of one kind (optimizers or schedulers) mapped to entries.

    Mapping-like: ``name in reg``, ``reg[name]`` (the :class:`Entry`, without
    importing its target), ``iter(reg)`` and ``len(reg)`` over canonical names.
    The first access runs plugin discovery once.
    """

    def __init__(self, kind: Kind, ensure: Callable[[], None] | None = None) -> None:
        self.kind: Kind = kind
        self._ensure = ensure or (lambda: None)
        self._by_key: dict[str, list[Entry]] = {}
        self._loaded: dict[Entry, Any] = {}
        self._broken: dict[Entry, str] = {}

    # -- discovery-facing -------------------------------------------------
    def _clear(self) -> None:
        with LOCK:
            self._by_key.clear()
            self._loaded.clear()
            self._broken.clear()

    def _add(self, entry: Entry, *, override: bool = False) -> Entry:
        """Add ``entry``; same-source conflicts raise, cross-source ones coexist."""
        if not (callable(entry.target) or _is_ref(entry.target)):
            raise TypeError(
                f"{self.kind} factory for {entry.name!r} must be a callable or a "
                f"'module:attr' string, got {type(entry.target).__name__}: {entry.target!r}"
            )
        with LOCK:
            keys = (entry.name, *entry.aliases)
            clashes = {
                (key, old.qualified_name)
                for key in keys
                for old in self._by_key.get(key, ())
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
                for key in list(self._by_key):
                    kept = [e for e in self._by_key[key] if e.qualified_name not in doomed]
                    if kept:
                        self._by_key[key] = kept
                    else:
                        del self._by_key[key]
            for key in keys:
                self._by_key.setdefault(key, []).append(entry)
            return entry

    # -- public registration ----------------------------------------------
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
    ) -> Entry | Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register ``factory`` under ``name`` at run time (highest precedence).

        Usable as a decorator when ``factory`` is omitted.

        Args:
            name: the plain name; normalised.
            factory: a callable or a ``"module:attr"`` string.
            aliases: other names for the same entry.
            description: one line for listings (default: first docstring line).
            override: replace an existing runtime or builtin name.
            metadata: facts a trainer may need (e.g. ``{"needs_train_eval": True}``).

        Returns:
            The new :class:`Entry`, or a decorator returning the factory unchanged.

        Raises:
            ValueError: the name or an alias is not a valid plain name.
            TypeError: ``factory`` is neither callable nor a "module:attr" string.
            DuplicateNameError: the name exists and ``override`` is False.
        """
        key = normalize_name(name, what=f"{self.kind} name")
        alias_keys = tuple(
            dict.fromkeys(normalize_name(a, what=f"{self.kind} alias") for a in aliases)
        )
        if factory is None:

            def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
                self.register(
                    name,
                    fn,
                    aliases=aliases,
                    description=description,
                    override=override,
                    metadata=metadata,
                )
                return fn

            return decorator
        if description is None:
            doc = "" if isinstance(factory, str) else inspect.getdoc(factory) or ""
            description = doc.strip().splitlines()[0] if doc.strip() else ""
        self._ensure()
        return self._add(
            Entry(
                name=key,
                kind=self.kind,
                target=factory,
                aliases=tuple(a for a in alias_keys if a != key),
                description=description,
                metadata=MappingProxyType(dict(metadata or {})),
            ),
            override=override,
        )

    def unregister(self, name: str) -> Entry:
        """Remove a name registered at run time and return its entry.

        Raises:
            UnknownNameError: no runtime entry has that name.
        """
        self._ensure()
        key = normalize_name(name, what=f"{self.kind} name")
        with LOCK:
            found = [e for e in self._by_key.get(key, ()) if e.source == "runtime"]
            if not found:
                raise UnknownNameError(self.kind, name, self._visible_names())
            entry = found[0]
            for k in (entry.name, *entry.aliases):
                rest = [e for e in self._by_key.get(k, ()) if e is not entry]
                if rest:
                    self._by_key[k] = rest
                else:
                    self._by_key.pop(k, None)
            return entry

    # -- lookup -----------------------------------------------------------
    def resolve(self, name: str) -> Entry:
        """Return the entry a (possibly qualified) name reaches, without importing it.

        Raises:
            TypeError: ``name`` is not a string.
            ValueError: ``name`` is malformed.
            UnknownNameError: nothing answers to ``name``.
            AmbiguousNameError: two third parties provide the plain name.
        """
        self._ensure()
        dist, key = _split_qualified(name)
        with LOCK:
            candidates = list(self._by_key.get(key, ()))
        if dist is not None:
            for entry in candidates:
                if normalize_dist(entry.provider) == dist:
                    return entry
            raise UnknownNameError(self.kind, name, self._qualified_names())
        if not candidates:
            raise UnknownNameError(self.kind, name, self._visible_names())
        best = min(_SOURCE_RANK[e.source] for e in candidates)
        tier = [e for e in candidates if _SOURCE_RANK[e.source] == best]
        named = [e for e in tier if e.name == key] or tier
        providers = sorted({e.qualified_name for e in named})
        if len(providers) > 1:
            raise AmbiguousNameError(
                f"{self.kind} name {name!r} is provided by several plugins: "
                + ", ".join(providers)
                + "; use one of these qualified names"
            )
        return named[0]

    def load(self, name_or_entry: str | Entry) -> Any:
        """Resolve a name and import its target (once); return the factory.

        Raises:
            UnknownNameError: see :meth:`resolve`.
            AmbiguousNameError: see :meth:`resolve`.
            MissingDependencyError: an optional dependency is not installed.
            PluginLoadError: the target cannot be imported or lacks the attribute.
        """
        entry = name_or_entry if isinstance(name_or_entry, Entry) else self.resolve(name_or_entry)
        try:
            return self._loaded[entry]
        except KeyError:
            pass
        missing = self._missing_requirement(entry)
        if missing:
            raise MissingDependencyError(missing)
        if callable(entry.target):
            factory = entry.target
        else:
            try:
                factory = _import_target(entry.target)
            except Exception as e:
                where = f" (entry point {entry.entry_point})" if entry.entry_point else ""
                msg = (
                    f"{self.kind} {entry.name!r} from distribution {entry.provider!r}{where}: "
                    f"cannot load {entry.target!r}: {type(e).__name__}: {e}"
                )
                with LOCK:
                    self._broken[entry] = msg
                raise PluginLoadError(msg) from e
        with LOCK:
            self._loaded[entry] = factory
        return factory

    def _missing_requirement(self, entry: Entry) -> str | None:
        for mod in entry.requires:
            if importlib.util.find_spec(mod) is None:
                hint = (
                    f'pip install "optreg[{entry.extra}]"' if entry.extra else f"pip install {mod}"
                )
                return (
                    f"{self.kind} {entry.name!r} needs {mod}, which is not installed; "
                    f"install it with: {hint}"
                )
        return None

    def status(self, entry: Entry) -> tuple[bool, str | None]:
        """Return ``(available, reason)`` without importing the target."""
        broken = self._broken.get(entry)
        if broken:
            return False, broken
        missing = self._missing_requirement(entry)
        if missing is None and isinstance(entry.target, str):
            top = entry.target.partition(":")[0].split(".")[0].strip()
            if importlib.util.find_spec(top) is None:
                missing = f"module {top!r} of target {entry.target!r} is not installed"
        return (missing is None), missing

    def info(self, name: str) -> EntryInfo:
        """Describe a name; imports its target to read the signature.

        Raises:
            UnknownNameError: nothing answers to ``name``.
            AmbiguousNameError: two third parties provide the plain name.
        """
        entry = self.resolve(name)
        signature = None
        required: tuple[str, ...] = ()
        doc = entry.description
        try:
            factory = self.load(entry)
        except (PluginLoadError, MissingDependencyError):
            pass
        else:
            signature, required = _describe_signature(factory, self.kind)
            full = inspect.getdoc(factory) or ""
            doc = full.split("\n\n")[0].strip() or doc
        available, reason = self.status(entry)
        return EntryInfo(
            name=entry.name,
            kind=self.kind,
            aliases=entry.aliases,
            provider=entry.provider if entry.source != "runtime" else "(registered at run time)",
            version=entry.version,
            target=entry.target_ref,
            description=entry.description,
            available=available,
            reason=reason,
            required_args=required,
            signature=signature,
            doc=doc,
            metadata=entry.metadata,
            qualified_name=entry.qualified_name,
        )

    # -- listing ----------------------------------------------------------
    def entries(self) -> list[Entry]:
        """Every entry, shadowed and ambiguous ones included, sorted by name and rank."""
        self._ensure()
        with LOCK:
            unique = {e.qualified_name: e for es in self._by_key.values() for e in es}
        return sorted(unique.values(), key=lambda e: (e.name, _SOURCE_RANK[e.source], e.provider))

    def names(self) -> list[str]:
        """Sorted canonical names (each once)."""
        return self._visible_names()

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
            best = min(_SOURCE_RANK[e.source] for e in primary)
            winners = [e for e in primary if _SOURCE_RANK[e.source] == best]
            if len(winners) > 1:
                ambiguous.append((key, winners))
            else:
                shadowed.extend((winners[0], e) for e in primary if e is not winners[0])
        return shadowed, ambiguous

    def _visible_names(self) -> list[str]:
        self._ensure()
        with LOCK:
            return sorted({e.name for es in self._by_key.values() for e in es})

    def _qualified_names(self) -> list[str]:
        return sorted({e.qualified_name for e in self.entries()})

    # -- Mapping protocol -------------------------------------------------
    def __getitem__(self, name: str) -> Entry:
        return self.resolve(name)

    def __contains__(self, name: object) -> bool:
        try:
            self.resolve(name)  # type: ignore[arg-type]
        except (KeyError, ValueError, TypeError):
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._visible_names())

    def __len__(self) -> int:
        return len(self._visible_names())

    def __repr__(self) -> str:
        return f"<optreg Registry of {self.kind}s>"


def _is_ref(target: object) -> bool:
    if not isinstance(target, str):
        return False
    module, sep, attr = target.partition(":")
    return bool(sep and module.strip() and attr.strip()) and " " not in target


def _describe_signature(factory: Any, kind: str) -> tuple[str | None, tuple[str, ...]]:
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return None, ()
    params = list(sig.parameters.values())
    # the first positional parameter is params / optimizer, supplied by optreg
    if params and params[0].kind in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
        params = params[1:]
    required = tuple(
        p.name
        for p in params
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    )
    return str(sig), required
