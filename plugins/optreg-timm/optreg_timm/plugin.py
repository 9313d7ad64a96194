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

#: what optreg.testing needs for some names
NEEDS: dict[str, dict[str, Any]] = {
    "adahessian": {"create_graph": True},
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
