"""``step_decay_with_warmup``: linear warmup, then multiply by ``gamma`` every ``step_size`` steps.

The schedule is a pure, module-level function of the step, bound with
:func:`functools.partial` (so the scheduler pickles and its state_dict holds no
code) and wrapped in ``LambdaLR`` by the factory, which validates arguments once.
"""

from __future__ import annotations

from functools import partial

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

__all__ = ["get_step_decay_schedule_with_warmup", "step_decay_with_warmup"]


def step_decay_with_warmup(
    step: int, *, num_warmup_steps: int, step_size: int, gamma: float
) -> float:
    """The lr multiplier at ``step``: ``step / W`` during warmup, then ``gamma ** k``."""
    if step < num_warmup_steps:
        return float(step) / float(max(1, num_warmup_steps))
    return float(gamma ** ((step - num_warmup_steps) // step_size))


def get_step_decay_schedule_with_warmup(
    optimizer: Optimizer,
    num_warmup_steps: int,
    step_size: int = 10,
    gamma: float = 0.5,
    last_epoch: int = -1,
) -> LambdaLR:
    """Linear warmup over ``num_warmup_steps``, then ``lr * gamma ** ((step - W) // step_size)``.

    Raises:
        ValueError: a negative warmup, a ``step_size`` < 1 or a ``gamma`` outside (0, 1].
    """
    if (
        isinstance(num_warmup_steps, bool)
        or not isinstance(num_warmup_steps, int)
        or num_warmup_steps < 0
    ):
        raise ValueError(f"`num_warmup_steps` must be an int >= 0, got {num_warmup_steps!r}")
    if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
        raise ValueError(f"`step_size` must be an int >= 1, got {step_size!r}")
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"`gamma` must be in (0, 1], got {gamma!r}")
    fn = partial(
        step_decay_with_warmup, num_warmup_steps=num_warmup_steps, step_size=step_size, gamma=gamma
    )
    return LambdaLR(optimizer, fn, last_epoch)
