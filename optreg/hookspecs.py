"""The optreg plugin contract: pluggy hook specifications and the registry hooks receive.

A hook plugin is a module named in the ``optreg`` entry-point group of a
distribution's ``pyproject.toml``::

    [project.entry-points.optreg]
    mypkg = "mypkg.optreg_plugin"

and implements any of the hooks below with [optreg.hookimpl][]::

    from optreg import PluginRegistry, hookimpl

    @hookimpl
    def optreg_add_optimizers(registry: PluginRegistry) -> None:
        registry.register("lion", "lion_pytorch:Lion", description="Lion (sign momentum)")

optreg's own builtin plugins (`optreg.builtin`) implement the same hooks.

Hooks are called through pluggy, one plugin at a time (pluggy's call order:
last registered first, ``tryfirst`` / ``trylast`` honoured, ``wrapper=True``
implementations run around their own plugin's call): a plugin whose
``optreg_add_*`` hook raises loses only its own names (``optreg check`` reports
it); a notification hook that raises is reported with an
[OptregPluginWarning][optreg.OptregPluginWarning] and skipped. A hook implementation whose name
matches no specification here (``optreg_add_optimiser``) fails pluggy's
``check_pending()``: that plugin is not loaded and ``optreg check`` exits with 1.

The factory contract. A registered factory is called as ``factory(params, **kwargs)``
and its signature says which keywords it takes. A factory that does more declares it
with an ``optreg_contract`` attribute, a [optreg.FactoryContract][]
(``FactoryContract(routes_params=..., group_options=..., check_keywords=...)``, defined
in `optreg._core.contract`), read once when the name is loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

from optreg._core.contract import FactoryContract
from optreg._core.entry import Entry, make_entry
from optreg._core.traits import Traits

if TYPE_CHECKING:
    import torch

    from optreg._core.registry import Registry

__all__ = [
    "FactoryContract",
    "PluginRegistry",
    "hookspec",
    "optreg_add_optimizers",
    "optreg_add_schedulers",
    "optreg_optimizer_created",
    "optreg_prepare_optimizer",
    "optreg_scheduler_created",
]

hookspec = pluggy.HookspecMarker("optreg")


class PluginRegistry:
    """What ``optreg_add_optimizers`` / ``optreg_add_schedulers`` receive.

    A view of [optreg.optimizers][] (or [optreg.schedulers][]) bound to the
    plugin's distribution: every name registered through it is provided by that
    distribution (``dist:name`` reaches it), and a ``"module:attr"`` target is
    imported only when the name is used.

    Attributes:
        kind: ``"optimizer"`` or ``"scheduler"``.
        provider: the normalised name of the plugin's distribution.
    """

    def __init__(self, registry: Registry, provider: str, dist: Any, plugin: str) -> None:
        self._registry = registry
        self._dist = dist
        self._plugin = plugin
        self._added: list[Entry] = []
        self.kind = registry.kind
        self.provider = provider

    def register(
        self,
        name: str,
        target: Callable[..., Any] | str,
        *,
        aliases: tuple[str, ...] | list[str] = (),
        description: str | None = None,
        requires: tuple[str, ...] | list[str] = (),
        extra: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        traits: Traits | None = None,
    ) -> Entry:
        """Register a name for this plugin's distribution.

        Args:
            name: plain name (normalised).
            target: callable or ``"module:attr"`` string (preferred: lazy).
            aliases: other names for the entry.
            description: one line for listings (default: a callable's first docstring line).
            requires: what the target needs, checked without importing it: module
                names, optionally with a minimum version (``"torch>=2.9"``).
            extra: pip extra of ``optreg`` that installs ``requires``.
            metadata: free-form facts, shown by ``optreg info``; under
                ``"conformance"``, what the conformance kit needs ([optreg.testing][]).
            traits: what the name needs from the training loop ([Traits][optreg.Traits]:
                train/eval modes, a metric, its own lr, an install command).

        Returns:
            The new entry.

        Raises:
            ValueError: a malformed name, alias or requirement.
            TypeError: a target that is neither callable nor "module:attr".
            DuplicateNameError: this distribution already registered the name.
        """
        entry = self._registry._add(
            make_entry(
                self.kind,
                name,
                target,
                provider=self.provider,
                aliases=aliases,
                description=description,
                requires=requires,
                extra=extra,
                metadata=metadata,
                traits=traits,
                entry_point=f"optreg: {self._plugin}",
                dist=self._dist,
            )
        )
        self._added.append(entry)
        return entry

    def _withdraw(self) -> None:
        """Remove every name registered through this view (its hook raised)."""
        added = set(map(id, self._added))
        self._registry._remove(lambda e: id(e) in added)
        self._added.clear()

    def __contains__(self, name: object) -> bool:
        return name in self._registry

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry)

    def __repr__(self) -> str:
        return f"<optreg PluginRegistry of {self.kind}s for {self.provider!r}>"


@hookspec
def optreg_add_optimizers(registry: PluginRegistry) -> None:
    """Register optimizer names, preferably as lazy ``"module:attr"`` strings.

    Args:
        registry: a registry bound to the plugin's distribution; call
            ``registry.register(name, target, aliases=..., description=...,
            requires=..., metadata=...)``.
    """


@hookspec
def optreg_add_schedulers(registry: PluginRegistry) -> None:
    """Register scheduler names; same API as `optreg_add_optimizers()`."""


@hookspec
def optreg_prepare_optimizer(
    name: str, param_groups: list[dict[str, Any]], kwargs: dict[str, Any]
) -> None:
    """Adjust ``param_groups`` and ``kwargs`` in place before the optimizer is built.

    A hook that raises has its edits undone (and is reported once, as a
    [OptregPluginWarning][optreg.OptregPluginWarning]); the build goes on. For a composite
    optimizer that declares its sides ([optreg.Sides][]), the hook runs on the groups optreg
    made for it, each tagged with its side. For a factory that splits the parameters itself
    (``muon_adamw``: its contract says ``routes_params=True``), it runs on the groups that
    factory makes, each tagged ``"optimizer": "muon"`` or ``"adamw"``, with its
    hyperparameters (``adamw_lr``... included) as ``kwargs``: optreg passes such a factory an
    ``optreg_prepare(param_groups, kwargs)`` callable when its signature names one, and the
    factory calls it before it builds. A routing factory that takes no ``optreg_prepare``
    cannot run the hook: its build warns ([OptregPluginWarning][optreg.OptregPluginWarning])
    naming the hooks that did not run.

    Args:
        name: the canonical optimizer name.
        param_groups: the parameter groups about to be passed to the factory.
        kwargs: keyword arguments about to be passed to the factory.
    """


@hookspec
def optreg_optimizer_created(name: str, optimizer: torch.optim.Optimizer) -> None:
    """Called with every optimizer [optreg.get_optimizer][] builds."""


@hookspec
def optreg_scheduler_created(name: str, scheduler: Any) -> None:
    """Called with every scheduler [optreg.get_scheduler][] builds."""
