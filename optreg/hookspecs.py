"""The optreg plugin contract: pluggy hook specifications (project name ``"optreg"``).

A hook plugin is a module named in the ``optreg`` entry-point group of a
distribution's ``pyproject.toml``::

    [project.entry-points.optreg]
    mypkg = "mypkg.optreg_plugin"

and implements any of the hooks below with :data:`optreg.hookimpl`::

    from optreg import hookimpl

    @hookimpl
    def optreg_add_optimizers(registry):
        registry.register("lion", "lion_pytorch:Lion", description="Lion (sign momentum)")

Hooks are called one plugin at a time: a plugin whose hook raises loses only its
own names (``optreg check`` reports it); a notification hook that raises is
reported with an ``OptregPluginWarning`` and skipped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import torch

    from optreg._discovery import PluginRegistry

hookspec = pluggy.HookspecMarker("optreg")


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
    """Register scheduler names; same API as :func:`optreg_add_optimizers`."""


@hookspec
def optreg_prepare_optimizer(
    name: str, param_groups: list[dict[str, Any]], kwargs: dict[str, Any]
) -> None:
    """Adjust ``param_groups`` and ``kwargs`` in place before the optimizer is built.

    Args:
        name: the canonical optimizer name.
        param_groups: the parameter groups about to be passed to the factory.
        kwargs: keyword arguments about to be passed to the factory.
    """


@hookspec
def optreg_optimizer_created(name: str, optimizer: torch.optim.Optimizer) -> None:
    """Called with every optimizer :func:`optreg.get_optimizer` builds."""


@hookspec
def optreg_scheduler_created(name: str, scheduler: Any) -> None:
    """Called with every scheduler :func:`optreg.get_scheduler` builds."""
