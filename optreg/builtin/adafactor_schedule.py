"""``AdafactorSchedule`` (the schedule name ``adafactor``): reports the lr Adafactor
computes itself with ``relative_step=True``, as transformers' proxy does."""

from __future__ import annotations

from functools import partial
from typing import Any

from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from optreg._core import validate
from optreg.builtin.adafactor import GROUP_KEYS
from optreg.builtin.adafactor_math import adafactor_lr
from optreg.builtin.schedule_lr import restore_lrs

__all__ = ["AdafactorSchedule", "get_adafactor_schedule"]


def _constant(step: int, *, value: float) -> float:
    return value


class AdafactorSchedule(LambdaLR):
    """Reports the learning rate Adafactor computes itself (transformers' proxy).

    Use it with ``relative_step=True`` (Adafactor's default), where the group's
    ``lr`` is not used: ``get_last_lr()`` then gives, per group, ``lr_t`` of the
    group's first parameter, or ``initial_lr`` before that parameter was stepped.

    Args:
        optimizer: an Adafactor optimizer with ``relative_step=True`` in every group.
        initial_lr: the value reported before the first step.

    Raises:
        TypeError: ``optimizer`` is not an Adafactor (its groups lack Adafactor's options).
        ValueError: a group has ``relative_step=False`` (there this proxy would overwrite
            the external learning rate; use a regular schedule instead).
    """

    def __init__(self, optimizer: Optimizer, initial_lr: float = 0.0) -> None:
        for i, group in enumerate(optimizer.param_groups):
            missing = [k for k in GROUP_KEYS if k not in group]
            if missing:
                raise TypeError(
                    f"AdafactorSchedule needs an Adafactor optimizer; param group {i} of "
                    f"{type(optimizer).__name__} lacks {', '.join(missing)}"
                )
            if not group["relative_step"]:
                raise ValueError(
                    f"AdafactorSchedule needs relative_step=True, param group {i} has "
                    "relative_step=False; use a regular schedule with an external lr"
                )
        initial_lr = validate.real("initial_lr", initial_lr)
        for group in optimizer.param_groups:
            group["initial_lr"] = initial_lr
        super().__init__(optimizer, partial(_constant, value=initial_lr))
        for group in optimizer.param_groups:
            del group["initial_lr"]

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state saved by `state_dict()`, the reported lrs of the groups too
        (whichever of the optimizer and this schedule was built or loaded first)."""
        super().load_state_dict(state_dict)
        restore_lrs(self.optimizer, state_dict.get("_last_lr"))

    def get_lr(self) -> list[float | Tensor]:
        """Per group: ``lr_t`` of its first parameter once stepped, else the base lr."""
        lrs: list[float | Tensor] = []
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            first = group["params"][0] if group["params"] else None
            state = self.optimizer.state.get(first) if first is not None else None
            if first is not None and first.grad is not None and state and "step" in state:
                lrs.append(adafactor_lr(group, state))
            else:
                lrs.append(base)
        return lrs


def get_adafactor_schedule(optimizer: Optimizer, initial_lr: float = 0.0) -> AdafactorSchedule:
    """Build an `AdafactorSchedule` (the scheduler name ``adafactor``).

    Raises:
        TypeError: ``optimizer`` is not an Adafactor.
        ValueError: a group has ``relative_step=False``.
    """
    return AdafactorSchedule(optimizer, initial_lr)
