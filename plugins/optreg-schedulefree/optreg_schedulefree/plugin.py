"""The optreg hook plugin (entry-point group ``optreg``): schedule-free optimizers.

Schedule-free optimizers keep two points: the one gradients are taken at (train
mode) and the averaged one to evaluate and save (eval mode). A trainer must call
``optimizer.train()`` before training steps and ``optimizer.eval()`` before
evaluation and checkpointing; every entry's traits say so
(``optreg.optimizer_info(name).traits.train_eval``), and optreg's integrations and
``optreg.eval_mode`` act on it.
They need no LR schedule (use ``constant``; ``warmup_steps`` is built in).
"""

from __future__ import annotations

from typing import Any

from optreg import PluginRegistry, Traits, hookimpl

__all__ = ["METADATA", "OPTIMIZERS", "optreg_add_optimizers"]

METADATA: dict[str, Any] = {
    "needs_train_eval": True,
    "note": (
        "call optimizer.train() before training steps and optimizer.eval() before "
        "evaluation and checkpointing; use a constant LR schedule (warmup_steps is built in)"
    ),
    "recommended_scheduler": "constant",
}

#: name -> (target, aliases, description)
OPTIMIZERS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "schedule_free_adamw": (
        "schedulefree:AdamWScheduleFree",
        ("adamw_schedulefree",),
        "schedule-free AdamW (Defazio et al., 2024), from schedulefree",
    ),
    "schedule_free_sgd": (
        "schedulefree:SGDScheduleFree",
        ("sgd_schedulefree",),
        "schedule-free SGD with momentum, from schedulefree",
    ),
    "schedule_free_radam": (
        "schedulefree:RAdamScheduleFree",
        ("radam_schedulefree",),
        "schedule-free RAdam (no warmup needed), from schedulefree",
    ),
}


#: what optreg.testing's conformance checks need (see optreg.testing)
_CONFORMANCE: dict[str, dict[str, Any]] = {
    # RAdam's rectification makes the first steps no-ops unless this is off
    "schedule_free_radam": {"kwargs": {"silent_sgd_phase": False}},
}


@hookimpl
def optreg_add_optimizers(registry: PluginRegistry) -> None:
    """Register the schedule-free optimizers (schedulefree is not imported)."""
    for name, (target, aliases, description) in OPTIMIZERS.items():
        metadata = dict(METADATA)
        if name in _CONFORMANCE:
            metadata["conformance"] = _CONFORMANCE[name]
        registry.register(
            name,
            target,
            aliases=aliases,
            description=description,
            requires=("schedulefree",),
            metadata=metadata,
            traits=Traits(train_eval=True),
        )
