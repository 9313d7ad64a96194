"""Builtin learning-rate schedules: pure step -> multiplier functions.

Each schedule is a module-level function ``f(step, *, ...) -> float`` bound with
:func:`functools.partial` (so it pickles) and wrapped in ``LambdaLR`` only by the
``get_*_schedule*`` factories, which validate their arguments once.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from optreg import hookimpl

__all__ = [
    "get_constant_schedule",
    "get_cosine_schedule_with_warmup",
    "get_linear_schedule_with_warmup",
]


def _check_steps(**steps: int) -> None:
    for arg, value in steps.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"`{arg}` must be an int >= 0, got {value!r}")


def _constant(step: int) -> float:
    return 1.0


def _linear(step: int, *, num_warmup_steps: int, num_training_steps: int) -> float:
    if step < num_warmup_steps:
        return float(step) / float(max(1, num_warmup_steps))
    return max(
        0.0,
        float(num_training_steps - step) / float(max(1, num_training_steps - num_warmup_steps)),
    )


def _cosine(
    step: int, *, num_warmup_steps: int, num_training_steps: int, num_cycles: float
) -> float:
    if step < num_warmup_steps:
        return float(step) / float(max(1, num_warmup_steps))
    progress = float(step - num_warmup_steps) / float(max(1, num_training_steps - num_warmup_steps))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress)))


def get_constant_schedule(optimizer: Optimizer, last_epoch: int = -1) -> LambdaLR:
    """Constant learning rate: the optimizer's lr at every step."""
    return LambdaLR(optimizer, _constant, last_epoch=last_epoch)


def get_linear_schedule_with_warmup(
    optimizer: Optimizer, num_warmup_steps: int, num_training_steps: int, last_epoch: int = -1
) -> LambdaLR:
    """Linear warmup from 0, then linear decay to 0 at ``num_training_steps``.

    Raises:
        ValueError: a negative or non-integer step count.
    """
    _check_steps(num_warmup_steps=num_warmup_steps, num_training_steps=num_training_steps)
    fn = partial(_linear, num_warmup_steps=num_warmup_steps, num_training_steps=num_training_steps)
    return LambdaLR(optimizer, fn, last_epoch)


def get_cosine_schedule_with_warmup(
    optimizer: Optimizer,
    num_warmup_steps: int,
    num_training_steps: int,
    num_cycles: float = 0.5,
    last_epoch: int = -1,
) -> LambdaLR:
    """Linear warmup, then cosine decay (half a cosine by default) to 0.

    Raises:
        ValueError: a negative or non-integer step count.
    """
    _check_steps(num_warmup_steps=num_warmup_steps, num_training_steps=num_training_steps)
    fn = partial(
        _cosine,
        num_warmup_steps=num_warmup_steps,
        num_training_steps=num_training_steps,
        num_cycles=num_cycles,
    )
    return LambdaLR(optimizer, fn, last_epoch)


_SCHEDULES: dict[str, tuple[str, str]] = {
    "constant": ("get_constant_schedule", "constant learning rate"),
    "linear": ("get_linear_schedule_with_warmup", "linear warmup, then linear decay to 0"),
    "cosine": ("get_cosine_schedule_with_warmup", "linear warmup, then cosine decay to 0"),
}


@hookimpl
def optreg_add_schedulers(registry: Any) -> None:
    for name, (attr, description) in _SCHEDULES.items():
        registry.register(name, f"{__name__}:{attr}", description=description)
