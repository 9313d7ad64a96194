"""Entry and EntryInfo, name normalisation, and `make_entry()`: the one place entries are built.

Every entry (builtin catalogue, third-party entry point, hook plugin, run-time
registration) is made by `make_entry()`, so names, aliases, descriptions,
requirements and metadata are normalised and checked the same way.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from optreg._core.traits import Conformance, Traits

__all__ = [
    "BUILTIN_DIST",
    "RUNTIME_PROVIDER",
    "Entry",
    "EntryInfo",
    "Kind",
    "Source",
    "dist_metadata",
    "dist_requires",
    "is_ref",
    "make_entry",
    "normalize_dist",
    "normalize_name",
    "optreg_version",
    "own_doc",
    "split_qualified",
]

Kind = Literal["optimizer", "scheduler"]
Source = Literal["runtime", "builtin", "plugin"]
BUILTIN_DIST = "optreg"
RUNTIME_PROVIDER = "__runtime__"
_NAME_RE = re.compile(r"^[a-z0-9_][a-z0-9_.]*$")
_REQUIREMENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*(\s*>=\s*[0-9]+(\.[0-9]+)*)?$")


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


def split_qualified(name: object) -> tuple[str | None, str]:
    """Split ``"dist:name"`` into ``(normalised dist, normalised name)``; ``dist`` is None if plain.

    Raises:
        TypeError: ``name`` is not a string.
        ValueError: either part is malformed (the message shows the whole name).
    """
    if isinstance(name, str) and ":" in name:
        dist, _, plain = name.partition(":")
        try:
            return normalize_dist(dist), normalize_name(plain)
        except ValueError as e:  # show the whole qualified name, not just its tail
            raise ValueError(f"invalid qualified name {name!r} ('dist:name'): {e}") from e
    return None, normalize_name(name)


def is_ref(target: object) -> bool:
    """True for a ``"module:attr"`` string."""
    if not isinstance(target, str):
        return False
    module, sep, attr = target.partition(":")
    return bool(sep and module.strip() and attr.strip()) and " " not in target


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
        requires: what the target needs, checked without importing it: top-level
            module names, optionally with a minimum version (``"torch>=2.9"``).
        extra: the ``optreg`` pip extra that installs ``requires``.
        metadata: free-form facts for display, and what the conformance kit needs under
            ``"conformance"`` (read-only).
        traits: what the name needs from the training loop ([Traits][optreg.Traits]).
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
    traits: Traits = field(default_factory=Traits, compare=False)

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
    def project(self) -> str:
        """The providing distribution's project name as its metadata spells it
        (``optreg-lion-came``), read lazily; the normalised provider when unknown."""
        if self.source == "builtin":
            return BUILTIN_DIST
        return _metadata_field(self.dist, "Name") or self.provider

    @property
    def summary(self) -> str:
        """The providing distribution's one-line summary (``""`` when it has none)."""
        return _metadata_field(self.dist, "Summary") or ""

    @property
    def version(self) -> str | None:
        """Version of the providing distribution, if known (optreg's own for builtins)."""
        if self.dist is None:
            return optreg_version() if self.source == "builtin" else None
        return _metadata_field(self.dist, "Version")


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
    traits: Traits = field(default_factory=Traits)


# A distribution's parsed METADATA, once per distribution: importlib-metadata parses the
# file (through the email parser) at every ``dist.metadata`` / ``dist.version``, and a
# listing asks each distribution several times per name (weakly keyed: nothing kept
# beyond the distribution objects discovery holds).
_PARSED: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def dist_metadata(dist: Any) -> Any:
    """``dist.metadata``, parsed once per distribution object.

    Raises:
        Exception: what importlib-metadata raises for a corrupt METADATA file.
    """
    try:
        return _PARSED[dist]
    except KeyError:
        parsed = _PARSED[dist] = dist.metadata
        return parsed
    except TypeError:  # not weakly referable: parse it each time
        return dist.metadata


def dist_requires(dist: Any) -> list[str]:
    """The ``Requires-Dist`` lines of ``dist`` (empty for none or unreadable metadata)."""
    try:
        return list(dist_metadata(dist).get_all("Requires-Dist") or dist.requires or ())
    except Exception:  # unreadable metadata
        return []


def _metadata_field(dist: Any, field_name: str) -> str | None:
    if dist is None:
        return None
    try:
        value = dist_metadata(dist)[field_name]
    except Exception:  # a corrupt or missing METADATA file
        return None
    return str(value).strip() or None if value else None


def own_doc(obj: object) -> str:
    """``obj``'s own docstring, cleaned (not one inherited from a base class)."""
    import inspect

    doc = obj.__dict__.get("__doc__") if isinstance(obj, type) else getattr(obj, "__doc__", None)
    if isinstance(obj, type) or callable(obj):
        return inspect.cleandoc(doc) if isinstance(doc, str) else ""
    return ""


@functools.cache
def optreg_version() -> str:
    """optreg's own version: from its install metadata, ``"0+unknown"`` in a bare source tree."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("optreg")
    except PackageNotFoundError:
        return "0+unknown"


def make_entry(
    kind: Kind,
    name: str,
    target: object,
    *,
    provider: str = RUNTIME_PROVIDER,
    aliases: Iterable[str] = (),
    description: str | None = None,
    requires: Iterable[str] = (),
    extra: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    entry_point: str | None = None,
    dist: Any = None,
    traits: Traits | None = None,
) -> Entry:
    """Build an `Entry`, normalising and checking every field.

    ``source`` follows from ``provider``: ``"runtime"`` for run-time registrations,
    ``"builtin"`` for optreg itself, ``"plugin"`` for any other distribution. A
    missing description is the first line of the target's docstring (callables only).
    Without ``traits``, the traits optreg 0.3 read from ``metadata`` keys count.

    Raises:
        TypeError: ``name`` is not a str, or ``target`` is neither callable nor a
            ``"module:attr"`` string, ``metadata`` is not a mapping or ``traits`` not
            a [Traits][optreg.Traits].
        ValueError: a malformed name, alias or requirement.
    """
    key = normalize_name(name, what=f"{kind} name")
    if not (callable(target) or is_ref(target)):
        raise TypeError(
            f"{kind} factory for {key!r} must be a callable or a 'module:attr' string, "
            f"got {type(target).__name__}: {target!r}"
        )
    if aliases is None:
        aliases = ()
    if isinstance(aliases, str):  # one alias, not its characters
        aliases = (aliases,)
    alias_keys = tuple(
        a
        for a in dict.fromkeys(normalize_name(a, what=f"{kind} alias") for a in aliases)
        if a != key
    )
    if isinstance(requires, str):
        requires = (requires,)
    reqs = tuple(str(r).strip() for r in requires)
    for req in reqs:
        if not _REQUIREMENT_RE.match(req):
            raise ValueError(
                f"{kind} {key!r}: requirement {req!r} must be a module name, optionally "
                "with a minimum version ('torch>=2.9')"
            )
    if metadata is not None and not isinstance(metadata, Mapping):
        raise TypeError(
            f"{kind} {key!r}: metadata must be a mapping, got {type(metadata).__name__}"
        )
    try:
        if traits is None:
            traits = Traits.from_metadata(metadata or {})
        elif not isinstance(traits, Traits):
            raise TypeError(
                f"traits must be an optreg.Traits, got {type(traits).__name__}: {traits!r:.60}"
            )
        elif metadata and "conformance" in metadata and traits.conformance == Conformance():
            conformance = Conformance.from_mapping(metadata["conformance"])
            traits = dataclasses.replace(traits, conformance=conformance)
    except (TypeError, ValueError) as e:
        raise type(e)(f"{kind} {key!r}: {e}") from e
    if description is None:
        doc = own_doc(target) if callable(target) else ""
        description = doc.splitlines()[0] if doc else ""
    if not isinstance(description, str):
        raise TypeError(
            f"{kind} {key!r}: description must be a str, got {type(description).__name__}: "
            f"{description!r:.60}"
        )
    if provider == RUNTIME_PROVIDER:
        source: Source = "runtime"
    else:
        source = "builtin" if provider == BUILTIN_DIST else "plugin"
    return Entry(
        name=key,
        kind=kind,
        target=target.strip() if isinstance(target, str) else target,  # type: ignore[arg-type]
        provider=provider,
        source=source,
        aliases=alias_keys,
        description=description.strip(),
        requires=reqs,
        extra=extra,
        metadata=MappingProxyType(dict(metadata or {})),
        entry_point=entry_point,
        dist=dist,
        traits=traits,
    )
