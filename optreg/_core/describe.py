"""Describing entries: the [EntryInfo][optreg.EntryInfo] behind ``optimizer_info`` / ``optreg info``."""

from __future__ import annotations

from optreg._core import loading
from optreg._core import signature as _signature
from optreg._core.entry import Entry, EntryInfo, own_doc
from optreg._core.errors import MissingDependencyError, PluginLoadError

__all__ = ["describe"]


def describe(entry: Entry) -> EntryInfo:
    """Describe ``entry``; imports its target (when it can) to read signature and docstring.

    The description is the one the plugin gave, else the first line of the factory's
    own docstring, else (the factory not importable here) the distribution's summary."""
    signature = None
    required: tuple[str, ...] = ()
    description = entry.description or entry.summary
    doc = description
    try:
        loading.contract(entry)  # loads it and reads its signature, containing failures
        factory = loading.load(entry)
    except (PluginLoadError, MissingDependencyError):
        pass
    else:
        signature, required = _signature.describe(factory)
        # the target's own docstring only: a class without one would show its base's
        # ("Base class for all optimizers.")
        doc = own_doc(factory).split("\n\n")[0].strip() or doc
        if not entry.description and own_doc(factory):
            description = own_doc(factory).strip().splitlines()[0]
    available, reason = loading.status(entry)
    return EntryInfo(
        name=entry.name,
        kind=entry.kind,
        aliases=entry.aliases,
        provider=entry.project if entry.source != "runtime" else "(registered at run time)",
        version=entry.version,
        target=entry.target_ref,
        description=description,
        available=available,
        reason=reason,
        required_args=required,
        signature=signature,
        doc=doc,
        metadata=entry.metadata,
        qualified_name=entry.qualified_name,
        traits=entry.traits,
    )
