"""Builtin learning-rate schedules: pure step -> multiplier functions.

Each schedule is a module-level function ``f(step, *, ...) -> float`` bound with
:func:`functools.partial` (so it pickles) and wrapped in ``LambdaLR`` only by the
``get_*_schedule*`` factories, which validate their arguments once. Names, defaults,
formulas and errors are those of the ``transformers`` 5.x functions of the same
names (``/shared/REFERENCE.md``), with two deliberate differences:

* arguments the reference accepts but cannot use (negative or NaN step counts,
  ``num_warmup_steps > num_training_steps``, a zero learning rate under ``min_lr``,
  a non-positive ``timescale``) raise :class:`ValueError` at construction;
* where the reference divides by zero (``polynomial`` with ``num_warmup_steps ==
  num_training_steps`` at that step) the limit value ``lr_end / lr`` is returned.

The metric-driven ``greedy`` schedule lives in :mod:`optreg.builtin.greedy`.
"""

from __future__ import annotations

import math
import warnings
from functools import partial

from torch.optim import Optimizer

from optreg import _validate
from optreg._errors import WarmupLongerThanTrainingWarning, user_stacklevel
from optreg.builtin.schedule_lr import ScheduleLR

__all__ = [
    "ScheduleLR",
    "get_constant_schedule",
    "get_constant_schedule_with_warmup",
    "get_cosine_schedule_with_warmup",
    "get_cosine_with_hard_restarts_schedule_with_warmup",
    "get_cosine_with_min_lr_schedule_with_warmup",
    "get_cosine_with_min_lr_schedule_with_warmup_lr_rate",
    "get_inverse_sqrt_schedule",
    "get_linear_schedule_with_warmup",
    "get_polynomial_decay_schedule_with_warmup",
    "get_wsd_schedule",
]

_WSD_TYPES = ("linear", "cosine", "1-sqrt")


# -- validation ---------------------------------------------------------------------


def _warmup_and_training(num_warmup_steps: object, num_training_steps: object) -> tuple[int, int]:
    """Return both step counts (a warmup fraction resolved); a warmup longer than
    training is what transformers computes there, with a warning."""
    w = _validate.warmup_steps(num_warmup_steps, num_training_steps)
    n = _validate.steps("num_training_steps", num_training_steps)
    if w > n:
        _warn_long_warmup(w, n)
    return w, n


def _warn_long_warmup(w: int, n: int) -> None:
    warnings.warn(
        f"num_warmup_steps={w} > num_training_steps={n}: the warmup never finishes; the "
        "learning rates are what transformers computes for these counts (its smoke-test "
        "behaviour), not an error",
        WarmupLongerThanTrainingWarning,
        stacklevel=user_stacklevel(),
    )


def _base_lr(optimizer: Optimizer) -> float:
    try:
        lr = optimizer.defaults["lr"]
    except (AttributeError, KeyError) as e:
        raise ValueError(
            f"{type(optimizer).__name__} has no default learning rate "
            "(optimizer.defaults['lr']), which this schedule needs"
        ) from e
    return float(lr)


def _min_lr_rate(optimizer: Optimizer, min_lr: float | None, min_lr_rate: float | None) -> float:
    if min_lr is not None and min_lr_rate is not None:
        raise ValueError("Only one of min_lr or min_lr_rate should be set")
    if min_lr is not None:
        min_lr = _validate.real("min_lr", min_lr)
        lr = _base_lr(optimizer)
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
    return _validate.real("min_lr_rate", min_lr_rate)


# -- pure schedules: step -> multiplier of the initial lr ----------------------------


def _constant(step: int) -> float:
    return 1.0


def _constant_with_warmup(step: int, *, num_warmup_steps: int) -> float:
    if step < num_warmup_steps:
        return float(step) / float(max(1.0, num_warmup_steps))
    return 1.0


def _linear(step: int, *, num_warmup_steps: int, num_training_steps: int) -> float:
    if step < num_warmup_steps:
        return float(step) / float(max(1, num_warmup_steps))
    return max(
        0.0,
        float(num_training_steps - step) / float(max(1, num_training_steps - num_warmup_steps)),
    )


def _cosine(
    step: int,
    *,
    num_warmup_steps: int,
    num_training_steps: int,
    num_cycles: float,
    min_lr_rate: float = 0.0,
) -> float:
    if step < num_warmup_steps:
        return float(step) / float(max(1, num_warmup_steps))
    progress = float(step - num_warmup_steps) / float(max(1, num_training_steps - num_warmup_steps))
    factor = 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress))
    return max(0.0, factor * (1 - min_lr_rate) + min_lr_rate)


def _cosine_with_restarts(
    step: int, *, num_warmup_steps: int, num_training_steps: int, num_cycles: float
) -> float:
    if step < num_warmup_steps:
        return float(step) / float(max(1, num_warmup_steps))
    progress = float(step - num_warmup_steps) / float(max(1, num_training_steps - num_warmup_steps))
    if progress >= 1.0:
        return 0.0
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((float(num_cycles) * progress) % 1.0))))


def _polynomial(
    step: int,
    *,
    num_warmup_steps: int,
    num_training_steps: int,
    lr_end: float,
    power: float,
    lr_init: float,
) -> float:
    if step < num_warmup_steps:
        return float(step) / float(max(1, num_warmup_steps))
    decay_steps = num_training_steps - num_warmup_steps
    if step > num_training_steps or decay_steps == 0:
        return lr_end / lr_init  # the end value (and the limit where decay_steps is 0)
    pct_remaining = 1 - (step - num_warmup_steps) / decay_steps
    decay = (lr_init - lr_end) * pct_remaining**power + lr_end
    return float(decay / lr_init)


def _inverse_sqrt(step: int, *, num_warmup_steps: int, timescale: float) -> float:
    if step < num_warmup_steps:
        return float(step) / float(max(1, num_warmup_steps))
    shift = timescale - num_warmup_steps
    return 1.0 / math.sqrt((step + shift) / timescale)


def _cosine_warmup_with_min_lr(
    step: int,
    *,
    num_warmup_steps: int,
    num_training_steps: int,
    num_cycles: float,
    min_lr_rate: float,
    warmup_lr_rate: float | None,
) -> float:
    s, w, n = float(step), float(num_warmup_steps), float(num_training_steps)
    if s < w:
        if warmup_lr_rate is None:
            return (s + 1.0) / max(1.0, w)
        return warmup_lr_rate + (1.0 - warmup_lr_rate) * s / max(1, w - 1)
    progress = (s - w + 1.0) / max(1.0, n - w)
    factor = 0.5 * (1.0 + math.cos(math.pi * num_cycles * 2.0 * progress))
    factor = factor * (1 - min_lr_rate) + min_lr_rate
    return max(0.0, factor)


def _warmup_stable_decay(
    step: int,
    *,
    num_warmup_steps: int,
    num_stable_steps: int,
    num_decay_steps: int,
    warmup_type: str,
    decay_type: str,
    min_lr_ratio: float,
    num_cycles: float,
) -> float:
    if step < num_warmup_steps:
        q = float(step) / float(max(1, num_warmup_steps))
        if warmup_type == "linear":
            factor = q
        elif warmup_type == "cosine":
            factor = 0.5 * (1.0 - math.cos(math.pi * q))
        else:  # "1-sqrt"
            factor = 1.0 - math.sqrt(1.0 - q)
        return max(0.0, factor * (1.0 - min_lr_ratio) + min_lr_ratio)
    if step < num_warmup_steps + num_stable_steps:
        return 1.0
    if step < num_warmup_steps + num_stable_steps + num_decay_steps:
        q = float(step - num_warmup_steps - num_stable_steps) / float(max(1, num_decay_steps))
        if decay_type == "linear":
            factor = 1.0 - q
        elif decay_type == "cosine":
            factor = 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * q))
        else:  # "1-sqrt"
            factor = 1.0 - math.sqrt(q)
        return max(0.0, factor * (1.0 - min_lr_ratio) + min_lr_ratio)
    return min_lr_ratio


# -- factories (transformers' names and signatures) ---------------------------------


def get_constant_schedule(optimizer: Optimizer, last_epoch: int = -1) -> ScheduleLR:
    """Constant learning rate: the optimizer's lr at every step."""
    return ScheduleLR(optimizer, _constant, last_epoch=last_epoch)


def get_constant_schedule_with_warmup(
    optimizer: Optimizer, num_warmup_steps: int, last_epoch: int = -1
) -> ScheduleLR:
    """Linear warmup from 0 over ``num_warmup_steps``, then the optimizer's lr.

    Raises:
        ValueError: a negative or fractional step count.
        TypeError: a step count that is not a number.
    """
    fn = partial(
        _constant_with_warmup,
        num_warmup_steps=_validate.warmup_steps(num_warmup_steps),
    )
    return ScheduleLR(optimizer, fn, last_epoch=last_epoch)


def get_linear_schedule_with_warmup(
    optimizer: Optimizer, num_warmup_steps: int, num_training_steps: int, last_epoch: int = -1
) -> ScheduleLR:
    """Linear warmup from 0, then linear decay to 0 at ``num_training_steps``.

    Raises:
        ValueError: a negative or fractional step count, or warmup beyond training.
        TypeError: a step count that is not a number.
    """
    w, n = _warmup_and_training(num_warmup_steps, num_training_steps)
    fn = partial(_linear, num_warmup_steps=w, num_training_steps=n)
    return ScheduleLR(optimizer, fn, last_epoch)


def get_cosine_schedule_with_warmup(
    optimizer: Optimizer,
    num_warmup_steps: int,
    num_training_steps: int,
    num_cycles: float = 0.5,
    last_epoch: int = -1,
) -> ScheduleLR:
    """Linear warmup, then cosine decay (``num_cycles`` = 0.5: half a cosine, to 0).

    Raises:
        ValueError: a negative or fractional step count, warmup beyond training,
            or a non-finite ``num_cycles``.
        TypeError: an argument that is not a number.
    """
    w, n = _warmup_and_training(num_warmup_steps, num_training_steps)
    fn = partial(
        _cosine,
        num_warmup_steps=w,
        num_training_steps=n,
        num_cycles=_validate.real("num_cycles", num_cycles),
    )
    return ScheduleLR(optimizer, fn, last_epoch)


def get_cosine_with_hard_restarts_schedule_with_warmup(
    optimizer: Optimizer,
    num_warmup_steps: int,
    num_training_steps: int,
    num_cycles: int = 1,
    last_epoch: int = -1,
) -> ScheduleLR:
    """Linear warmup, then ``num_cycles`` cosine decays to 0, each restarting at the lr.

    Raises:
        ValueError: a negative or fractional step count, warmup beyond training,
            or a non-finite ``num_cycles``.
        TypeError: an argument that is not a number.
    """
    w, n = _warmup_and_training(num_warmup_steps, num_training_steps)
    fn = partial(
        _cosine_with_restarts,
        num_warmup_steps=w,
        num_training_steps=n,
        num_cycles=_validate.real("num_cycles", num_cycles),
    )
    return ScheduleLR(optimizer, fn, last_epoch)


def get_polynomial_decay_schedule_with_warmup(
    optimizer: Optimizer,
    num_warmup_steps: int,
    num_training_steps: int,
    lr_end: float = 1e-7,
    power: float = 1.0,
    last_epoch: int = -1,
) -> ScheduleLR:
    """Linear warmup, then polynomial decay from the optimizer's lr to ``lr_end``.

    Raises:
        ValueError: ``lr_end`` negative or not smaller than the optimizer's default
            lr, a negative or non-finite ``power``, a negative or fractional step count,
            or warmup beyond training.
        TypeError: an argument that is not a number.
    """
    w, n = _warmup_and_training(num_warmup_steps, num_training_steps)
    lr_init = _base_lr(optimizer)
    lr_end = _validate.real("lr_end", lr_end, low=0)  # a negative lr_end would end below 0
    if not (lr_init > lr_end):
        raise ValueError(f"lr_end ({lr_end}) must be smaller than initial lr ({lr_init})")
    power = _validate.real("power", power)
    if power < 0:
        raise ValueError(f"`power` must be >= 0, got {power}")
    fn = partial(
        _polynomial,
        num_warmup_steps=w,
        num_training_steps=n,
        lr_end=lr_end,
        power=power,
        lr_init=lr_init,
    )
    return ScheduleLR(optimizer, fn, last_epoch)


def get_inverse_sqrt_schedule(
    optimizer: Optimizer,
    num_warmup_steps: int,
    timescale: int | None = None,
    last_epoch: int = -1,
) -> ScheduleLR:
    """Linear warmup, then ``1 / sqrt((step + timescale - num_warmup_steps) / timescale)``.

    ``timescale`` defaults to ``num_warmup_steps`` (10,000 when that is 0).

    Raises:
        ValueError: a negative or fractional step count, or ``timescale <= 0``.
        TypeError: an argument that is not a number.
    """
    w = _validate.warmup_steps(num_warmup_steps)
    scale = float(w or 10_000) if timescale is None else _validate.real("timescale", timescale)
    if scale <= 0:
        raise ValueError(f"`timescale` must be > 0, got {timescale!r}")
    fn = partial(_inverse_sqrt, num_warmup_steps=w, timescale=scale)
    return ScheduleLR(optimizer, fn, last_epoch=last_epoch)


def get_cosine_with_min_lr_schedule_with_warmup(
    optimizer: Optimizer,
    num_warmup_steps: int,
    num_training_steps: int,
    num_cycles: float = 0.5,
    last_epoch: int = -1,
    min_lr: float | None = None,
    min_lr_rate: float | None = None,
) -> ScheduleLR:
    """Like ``cosine`` but decaying to ``min_lr`` (or ``min_lr_rate`` times the lr).

    Raises:
        ValueError: both or neither of ``min_lr`` / ``min_lr_rate``, a negative or
            fractional step count, warmup beyond training, a non-finite value, or
            ``min_lr`` with an optimizer lr of 0.
        TypeError: an argument that is not a number.
    """
    w, n = _warmup_and_training(num_warmup_steps, num_training_steps)
    rate = _min_lr_rate(optimizer, min_lr, min_lr_rate)
    fn = partial(
        _cosine,
        num_warmup_steps=w,
        num_training_steps=n,
        num_cycles=_validate.real("num_cycles", num_cycles),
        min_lr_rate=rate,
    )
    return ScheduleLR(optimizer, fn, last_epoch)


def get_cosine_with_min_lr_schedule_with_warmup_lr_rate(
    optimizer: Optimizer,
    num_warmup_steps: int,
    num_training_steps: int,
    num_cycles: float = 0.5,
    last_epoch: int = -1,
    min_lr: float | None = None,
    min_lr_rate: float | None = None,
    warmup_lr_rate: float | None = None,
) -> ScheduleLR:
    """Warmup that never starts at 0, then cosine decay to ``min_lr``.

    Warmup is ``(step + 1) / num_warmup_steps``, or linear from ``warmup_lr_rate``
    to 1 over the warmup when that is given; decay progress counts from
    ``step - num_warmup_steps + 1``.

    Raises:
        ValueError: both or neither of ``min_lr`` / ``min_lr_rate``, a negative or
            fractional step count, warmup beyond training, a non-finite value, a
            negative ``warmup_lr_rate`` (it would write a negative lr), or ``min_lr``
            with an optimizer lr of 0.
        TypeError: an argument that is not a number.
    """
    w, n = _warmup_and_training(num_warmup_steps, num_training_steps)
    rate = _min_lr_rate(optimizer, min_lr, min_lr_rate)
    fn = partial(
        _cosine_warmup_with_min_lr,
        num_warmup_steps=w,
        num_training_steps=n,
        num_cycles=_validate.real("num_cycles", num_cycles),
        min_lr_rate=rate,
        warmup_lr_rate=None
        if warmup_lr_rate is None
        else _validate.real("warmup_lr_rate", warmup_lr_rate, low=0),
    )
    return ScheduleLR(optimizer, fn, last_epoch)


def get_wsd_schedule(
    optimizer: Optimizer,
    num_warmup_steps: int,
    num_decay_steps: int,
    num_training_steps: int | None = None,
    num_stable_steps: int | None = None,
    warmup_type: str = "linear",
    decay_type: str = "cosine",
    min_lr_ratio: float = 0,
    num_cycles: float = 0.5,
    last_epoch: int = -1,
) -> ScheduleLR:
    """Warmup, a stable phase at the lr, then decay to ``min_lr_ratio`` times the lr.

    The stable phase lasts ``num_stable_steps``, or else ``num_training_steps -
    num_warmup_steps - num_decay_steps``. ``warmup_type`` and ``decay_type`` are
    ``"linear"``, ``"cosine"`` or ``"1-sqrt"``.

    Raises:
        ValueError: neither ``num_training_steps`` nor ``num_stable_steps``, an
            unknown warmup or decay type, a negative or fractional step count,
            warmup plus decay beyond ``num_training_steps``, a negative
            ``min_lr_ratio`` (it would write negative learning rates), or a non-finite value.
        TypeError: an argument that is not a number.

    Warns:
        UserWarning: both ``num_training_steps`` and ``num_stable_steps`` given
            (``num_stable_steps`` wins).
    """
    if num_training_steps is None and num_stable_steps is None:
        raise ValueError("Either num_training_steps or num_stable_steps must be specified.")
    if num_training_steps is not None and num_stable_steps is not None:
        warnings.warn(
            "Both num_training_steps and num_stable_steps are specified. "
            "num_stable_steps will be used.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    if warmup_type not in _WSD_TYPES:
        raise ValueError(
            f"Unknown warmup type: {warmup_type}, expected 'linear', 'cosine' or '1-sqrt'"
        )
    if decay_type not in _WSD_TYPES:
        raise ValueError(
            f"Unknown decay type: {decay_type}, expected 'linear', 'cosine' or '1-sqrt'"
        )
    w = _validate.warmup_steps(num_warmup_steps, num_training_steps)
    d = _validate.steps("num_decay_steps", num_decay_steps)
    if num_stable_steps is not None:
        s = _validate.steps("num_stable_steps", num_stable_steps)
        if num_training_steps is not None:
            _validate.steps("num_training_steps", num_training_steps)
    else:
        n = _validate.steps("num_training_steps", num_training_steps)
        s = n - w - d
        if w > n:  # transformers' stable phase goes negative there; computed as it does
            _warn_long_warmup(w, n)
        elif s < 0:
            raise ValueError(
                "`num_warmup_steps` + `num_decay_steps` must be <= `num_training_steps`, got "
                f"{w} + {d} = {w + d} > num_training_steps={n}"
            )
    fn = partial(
        _warmup_stable_decay,
        num_warmup_steps=w,
        num_stable_steps=s,
        num_decay_steps=d,
        warmup_type=warmup_type,
        decay_type=decay_type,
        min_lr_ratio=_validate.real("min_lr_ratio", min_lr_ratio, low=0),
        num_cycles=_validate.real("num_cycles", num_cycles),
    )
    return ScheduleLR(optimizer, fn, last_epoch)
