"""ScheduleLR: the ``LambdaLR`` the builtin schedules return, with a checked
``load_state_dict``; and the helpers that read and write an optimizer's lr."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from optreg._core import validate

__all__ = [
    "ScheduleLR",
    "built_in_place",
    "check_group_count",
    "default_lr",
    "rate_of_min_lr",
    "required_lr",
    "restore_lrs",
    "set_lr",
]


class ScheduleLR(LambdaLR):
    """The ``LambdaLR`` every builtin schedule returns: one pure step function per group.

    A plain ``LambdaLR`` in everything it computes and stores. Its
    ``load_state_dict`` first checks that the state was saved for as many param
    groups as the optimizer has (``LambdaLR`` would fail with an ``IndexError``, or
    load lrs for the wrong groups), and then puts the saved lrs back into the param
    groups: a scheduler built after the optimizer's state was loaded has written
    ``initial_lr * f(0)`` there, and ``LambdaLR`` would run the first step after
    resume with it. So the order of building and loading does not matter.
    """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state saved by `state_dict()`, lrs of the param groups included.

        Raises:
            ValueError: the state holds a different number of param groups.
        """
        check_group_count(self, state_dict, "base_lrs")
        super().load_state_dict(state_dict)
        restore_lrs(self.optimizer, state_dict.get("_last_lr"))


def restore_lrs(optimizer: Any, lrs: Any) -> None:
    """Write the lrs a scheduler saved into ``optimizer``'s param groups (a tensor lr
    in place, as torch's schedulers update one)."""
    if not isinstance(lrs, list) or len(lrs) != len(optimizer.param_groups):
        return
    for group, lr in zip(optimizer.param_groups, lrs, strict=True):
        set_lr(group, lr)


def built_in_place(optimizer: Any, build: Callable[[], Any]) -> Any:
    """``build()``, a schedule built on ``optimizer`` for its step functions only: the
    learning rates it writes into the groups (and an ``initial_lr`` it adds) are put
    back as they were (``sequence``'s phases, a schedule driving weight decay)."""
    saved = [
        (_number(g["lr"]), "initial_lr" in g, g.get("initial_lr")) for g in optimizer.param_groups
    ]
    try:
        return build()
    finally:
        for group, (lr, had_initial, initial) in zip(optimizer.param_groups, saved, strict=False):
            if lr is not None:
                set_lr(group, lr)
            if had_initial:
                group["initial_lr"] = initial
            else:
                group.pop("initial_lr", None)


def _number(lr: Any) -> float | None:
    """A learning rate as a float (a one-element tensor read as its value), else None."""
    if validate.is_real(lr) or (validate.is_tensor(lr) and lr.numel() == 1):
        return float(lr)
    return None


def set_lr(group: dict[str, Any], lr: Any) -> None:
    """Set a param group's lr as torch's schedulers do: a tensor lr is filled in place (a
    compiled step reads it, and code holding it sees the change), a number replaced."""
    if isinstance(group["lr"], torch.Tensor):
        group["lr"].fill_(float(lr))
    else:
        group["lr"] = lr


def check_group_count(scheduler: Any, state_dict: Any, key: str) -> None:
    groups = len(scheduler.optimizer.param_groups)
    saved = state_dict.get(key) if isinstance(state_dict, dict) else None
    if not isinstance(saved, list) or len(saved) != groups:
        count = len(saved) if isinstance(saved, list) else "no"
        raise ValueError(
            f"{type(scheduler).__name__}.load_state_dict: the state was saved for {count} "
            f"param group{'' if count == 1 else 's'} ({key!r}), but the optimizer has {groups}; "
            "build the optimizer with the same param groups as the run that saved it"
        )


def default_lr(optimizer: Optimizer) -> float | None:
    """The optimizer's default lr as a number (a one-element tensor lr read as its value),
    which ``polynomial`` and the ``min_lr`` schedules read; None where it has none."""
    lr: Any = getattr(optimizer, "defaults", {}).get("lr")
    if validate.is_real(lr) or (validate.is_tensor(lr) and lr.numel() == 1):
        return float(lr)
    return None


def required_lr(base_lr: float | None) -> float:
    """``base_lr``, which a schedule reading the optimizer's lr needs.

    Raises:
        ValueError: the optimizer has no default lr.
    """
    if base_lr is None:
        raise ValueError(
            "the optimizer has no default learning rate (optimizer.defaults['lr']), which "
            "this schedule needs"
        )
    return base_lr


def rate_of_min_lr(base_lr: float | None, min_lr: float | None, min_lr_rate: float | None) -> float:
    """The floor as a rate of the lr: ``min_lr_rate``, or ``min_lr / base_lr``.

    Raises:
        ValueError: both or neither given, or ``min_lr`` with a zero lr.
    """
    if min_lr is not None and min_lr_rate is not None:
        raise ValueError("Only one of min_lr or min_lr_rate should be set")
    if min_lr is not None:
        min_lr = validate.real("min_lr", min_lr)
        lr = required_lr(base_lr)
        if lr == 0:
            raise ValueError(
                f"`min_lr` ({min_lr}) needs a non-zero optimizer lr to become a rate, "
                f"got lr={lr}; pass `min_lr_rate` instead"
            )
        return min_lr / lr
    if min_lr_rate is None:
        raise ValueError(
            "One of min_lr or min_lr_rate should be set through the `lr_scheduler_kwargs`"
        )
    return validate.real("min_lr_rate", min_lr_rate)
