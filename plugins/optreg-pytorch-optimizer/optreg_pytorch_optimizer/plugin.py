"""The optreg hook plugin (entry point group ``optreg``).

Every name of ``pytorch_optimizer.get_supported_optimizers()`` and
``get_supported_lr_schedulers()`` is registered as a lazy ``"pytorch_optimizer:Attr"``
target, but the Muon family (:mod:`optreg_pytorch_optimizer.muon`) and LOMO, AdaLOMO and
Adam-mini (:mod:`optreg_pytorch_optimizer.model`), whose factories are the plugin's. Names that optreg's builtins already use (``adamw``, ``sgd``, ``linear``,
``cosine``...) stay optreg's; pytorch_optimizer's are reachable as
``optreg-pytorch-optimizer:NAME``.
"""

from __future__ import annotations

from typing import Any

from optreg import PluginRegistry, hookimpl
from optreg_pytorch_optimizer._names import OPTIMIZERS, SCHEDULERS
from optreg_pytorch_optimizer._needs import (
    MUON_FAMILY,
    NOT_REGISTERED,
    OPTIMIZER_NEEDS,
    REQUIRES,
    SCHEDULER_NEEDS,
    TAKES_MODEL,
)

__all__ = ["optreg_add_optimizers", "optreg_add_schedulers"]

_REQUIRES = ("pytorch_optimizer",)


def _metadata(needs: dict[str, Any] | None) -> dict[str, Any]:
    return {"conformance": needs} if needs else {}


@hookimpl
def optreg_add_optimizers(registry: PluginRegistry) -> None:
    """Register pytorch_optimizer's optimizers (nothing is imported)."""
    for name, attr in OPTIMIZERS.items():
        if ("optimizer", name) in NOT_REGISTERED:
            continue
        # the Muon family needs use_muon groups (optreg_pytorch_optimizer.muon makes them);
        # LOMO, AdaLOMO and Adam-mini take the model (optreg_pytorch_optimizer.model)
        target = f"pytorch_optimizer:{attr}"
        if name in MUON_FAMILY:
            target = f"optreg_pytorch_optimizer.muon:{name}"
        elif name in TAKES_MODEL:
            target = f"optreg_pytorch_optimizer.model:{name}"
        registry.register(
            name,
            target,
            description=f"{attr} from pytorch_optimizer",
            requires=_REQUIRES + REQUIRES.get(name, ()),
            metadata=_metadata(OPTIMIZER_NEEDS.get(name)),
        )


@hookimpl
def optreg_add_schedulers(registry: PluginRegistry) -> None:
    """Register pytorch_optimizer's LR schedulers (nothing is imported)."""
    for name, attr in SCHEDULERS.items():
        if ("scheduler", name) in NOT_REGISTERED:
            continue
        registry.register(
            name,
            f"pytorch_optimizer:{attr}",
            description=f"{attr} from pytorch_optimizer",
            requires=_REQUIRES,
            metadata=_metadata(SCHEDULER_NEEDS.get(name)),
        )
