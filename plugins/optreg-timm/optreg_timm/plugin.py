"""The optreg hook plugin (entry-point group ``optreg``): timm's optimizer names.

Every name of ``timm.optim.list_optimizers()`` (frozen in :mod:`optreg_timm._names`),
built by ``timm.optim.create_optimizer_v2(params, opt=name, **kwargs)``. Listing imports
nothing (timm imports torchvision). Names a builtin has (``adamw``, ``sgd``, ``lion``,
...) stay the builtin's and are reachable as ``optreg-timm:NAME``.

timm's LR schedulers are not registered: they are not torch ``LRScheduler``s and their
``step(epoch)`` / ``step_update(num_updates)`` need the epoch or update count, which
optreg's scheduler contract (``step()``, ``state_dict()`` holding the position) does not
pass.
"""

from __future__ import annotations

from typing import Any

from optreg import PluginRegistry, hookimpl
from optreg_timm._names import NAMES

__all__ = ["NEEDS", "REQUIRES", "optreg_add_optimizers"]

#: modules a name needs beyond timm (checked without importing them)
REQUIRES: dict[str, tuple[str, ...]] = {
    **{n: ("apex",) for n in NAMES if n.startswith("fused")},
    **{n: ("bitsandbytes",) for n in NAMES if n.startswith("bnb")},
}

_BNB_CUDA = (
    "timm asserts torch.cuda.is_available() before it builds any bitsandbytes optimizer "
    "(optreg's own bnb names run on the CPU)"
)

#: what optreg.testing needs for some names, found with timm 1.0.31
NEEDS: dict[str, dict[str, Any]] = {
    "adahessian": {
        "create_graph": True,
        "skip_checks": {
            "resume_bit_identical": "upstream: the Hutchinson probes come from "
            "self.generator, seeded anew by every instance and not in state_dict(), so a "
            "resumed run draws other probes than one never stopped"
        },
    },
    # Adafactor with lr=None (its default) takes relative steps and has no lr to scale
    "adafactor": {"kwargs": {"lr": 0.01}},
    "cadafactor": {"kwargs": {"lr": 0.01}},
    # Lars' default lr=1.0 with Nesterov momentum diverges on the 20-step problem
    "nlarc": {"kwargs": {"lr": 0.1}},
    "nlars": {"kwargs": {"lr": 0.1}},
    **{n: {"device": "cuda", "skip": _BNB_CUDA} for n in NAMES if n.startswith("bnb")},
    # NVIDIA apex's fused kernels
    **{n: {"device": "cuda"} for n in NAMES if n.startswith("fused")},
}


@hookimpl
def optreg_add_optimizers(registry: PluginRegistry) -> None:
    """Register timm's optimizers (timm is not imported)."""
    for name in NAMES:
        needs = NEEDS.get(name)
        registry.register(
            name,
            f"optreg_timm.factories:{name}",
            description=f"timm.optim {name!r} (create_optimizer_v2)",
            requires=("timm", *REQUIRES.get(name, ())),
            metadata={"conformance": needs} if needs else {},
        )
