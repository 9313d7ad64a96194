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

Each factory's pure form (``cosine``, ``linear``, ...: the arguments, and the optimizer's
default lr where one is read, -> the step function) is public and declared as the factory's
``FactoryContract.multiplier``: ``sequence`` joins them, and they need no optimizer.
The metric-driven ``greedy`` schedule lives in :mod:`optreg.builtin.greedy`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from torch.optim import Optimizer

from optreg import _validate
from optreg._contract import FactoryContract
from optreg._errors import WarmupLongerThanTrainingWarning, user_stacklevel
from optreg.builtin.schedule_lr import ScheduleLR

__all__ = [
    "ScheduleLR",
    "constant",
    "constant_with_warmup",
    "cosine",
    "cosine_warmup_with_min_lr",
    "cosine_with_min_lr",
    "cosine_with_restarts",
    "default_lr",
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
    "inverse_sqrt",
    "linear",
    "polynomial",
    "warmup_stable_decay",
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


def default_lr(optimizer: Optimizer) -> float | None:
    """The optimizer's default lr as a number (a one-element tensor lr read as its value),
    which ``polynomial`` and the ``min_lr`` schedules read; None where it has none."""
    lr: Any = getattr(optimizer, "defaults", {}).get("lr")
    if _validate.is_real(lr) or (_validate.is_tensor(lr) and lr.numel() == 1):
        return float(lr)
    return None


def _required_lr(base_lr: float | None) -> float:
    if base_lr is None:
        raise ValueError(
            "the optimizer has no default learning rate (optimizer.defaults['lr']), which "
            "this schedule needs"
        )
    return base_lr


def _min_lr_rate(base_lr: float | None, min_lr: float | None, min_lr_rate: float | None) -> float:
    if min_lr is not None and min_lr_rate is not None:
        raise ValueError("Only one of min_lr or min_lr_rate should be set")
    if min_lr is not None:
        min_lr = _validate.real("min_lr", min_lr)
        lr = _required_lr(base_lr)
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


def _warmup(step: int, num_warmup_steps: int) -> float:
    """The linear warmup every warmup schedule but two starts with: 0 to 1."""
    return float(step) / float(max(1, num_warmup_steps))


def _constant(step: int) -> float:
    return 1.0


def _constant_with_warmup(step: int, *, num_warmup_steps: int) -> float:
    if step < num_warmup_steps:
        return _warmup(step, num_warmup_steps)
    return 1.0


def _linear(step: int, *, num_warmup_steps: int, num_training_steps: int) -> float:
    if step < num_warmup_steps:
        return _warmup(step, num_warmup_steps)
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
        return _warmup(step, num_warmup_steps)
    progress = float(step - num_warmup_steps) / float(max(1, num_training_steps - num_warmup_steps))
    factor = 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress))
    return max(0.0, factor * (1 - min_lr_rate) + min_lr_rate)


def _cosine_with_restarts(
    step: int, *, num_warmup_steps: int, num_training_steps: int, num_cycles: float
) -> float:
    if step < num_warmup_steps:
        return _warmup(step, num_warmup_steps)
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
        return _warmup(step, num_warmup_steps)
    decay_steps = num_training_steps - num_warmup_steps
    if step > num_training_steps or decay_steps == 0:
        return lr_end / lr_init  # the end value (and the limit where decay_steps is 0)
    pct_remaining = 1 - (step - num_warmup_steps) / decay_steps
    decay = (lr_init - lr_end) * pct_remaining**power + lr_end
    return float(decay / lr_init)


def _inverse_sqrt(step: int, *, num_warmup_steps: int, timescale: float) -> float:
    if step < num_warmup_steps:
        return _warmup(step, num_warmup_steps)
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


# -- pure forms: the arguments (and the optimizer's lr where one is read) -> step function


def constant() -> Callable[[int], float]:
    """The multiplier of ``constant``: 1 at every step."""
    return _constant


def constant_with_warmup(num_warmup_steps: int) -> Callable[[int], float]:
    """The multiplier of ``constant_with_warmup`` (see its factory)."""
    return partial(_constant_with_warmup, num_warmup_steps=_validate.warmup_steps(num_warmup_steps))


def linear(num_warmup_steps: int, num_training_steps: int) -> Callable[[int], float]:
    """The multiplier of ``linear`` (see :func:`get_linear_schedule_with_warmup`)."""
    w, n = _warmup_and_training(num_warmup_steps, num_training_steps)
    return partial(_linear, num_warmup_steps=w, num_training_steps=n)


def cosine(
    num_warmup_steps: int, num_training_steps: int, num_cycles: float = 0.5
) -> Callable[[int], float]:
    """The multiplier of ``cosine`` (see :func:`get_cosine_schedule_with_warmup`)."""
    w, n = _warmup_and_training(num_warmup_steps, num_training_steps)
    return partial(
        _cosine,
        num_warmup_steps=w,
        num_training_steps=n,
        num_cycles=_validate.real("num_cycles", num_cycles),
    )


def cosine_with_restarts(
    num_warmup_steps: int, num_training_steps: int, num_cycles: int = 1
) -> Callable[[int], float]:
    """The multiplier of ``cosine_with_restarts``."""
    w, n = _warmup_and_training(num_warmup_steps, num_training_steps)
    return partial(
        _cosine_with_restarts,
        num_warmup_steps=w,
        num_training_steps=n,
        num_cycles=_validate.real("num_cycles", num_cycles),
    )


def polynomial(
    num_warmup_steps: int,
    num_training_steps: int,
    lr_end: float = 1e-7,
    power: float = 1.0,
    *,
    base_lr: float | None,
) -> Callable[[int], float]:
    """The multiplier of ``polynomial``; ``base_lr`` is the optimizer's default lr."""
    w, n = _warmup_and_training(num_warmup_steps, num_training_steps)
    lr_init = _required_lr(base_lr)
    lr_end = _validate.real("lr_end", lr_end, low=0)  # a negative lr_end would end below 0
    if not (lr_init > lr_end):
        raise ValueError(f"lr_end ({lr_end}) must be smaller than initial lr ({lr_init})")
    power = _validate.real("power", power)
    if power < 0:
        raise ValueError(f"`power` must be >= 0, got {power}")
    return partial(
        _polynomial,
        num_warmup_steps=w,
        num_training_steps=n,
        lr_end=lr_end,
        power=power,
        lr_init=lr_init,
    )


def inverse_sqrt(num_warmup_steps: int, timescale: int | None = None) -> Callable[[int], float]:
    """The multiplier of ``inverse_sqrt``."""
    w = _validate.warmup_steps(num_warmup_steps)
    scale = float(w or 10_000) if timescale is None else _validate.real("timescale", timescale)
    if scale <= 0:
        raise ValueError(f"`timescale` must be > 0, got {timescale!r}")
    return partial(_inverse_sqrt, num_warmup_steps=w, timescale=scale)


def cosine_with_min_lr(
    num_warmup_steps: int,
    num_training_steps: int,
    num_cycles: float = 0.5,
    min_lr: float | None = None,
    min_lr_rate: float | None = None,
    *,
    base_lr: float | None,
) -> Callable[[int], float]:
    """The multiplier of ``cosine_with_min_lr``; ``base_lr`` turns ``min_lr`` into a rate."""
    w, n = _warmup_and_training(num_warmup_steps, num_training_steps)
    return partial(
        _cosine,
        num_warmup_steps=w,
        num_training_steps=n,
        num_cycles=_validate.real("num_cycles", num_cycles),
        min_lr_rate=_min_lr_rate(base_lr, min_lr, min_lr_rate),
    )


def cosine_warmup_with_min_lr(
    num_warmup_steps: int,
    num_training_steps: int,
    num_cycles: float = 0.5,
    min_lr: float | None = None,
    min_lr_rate: float | None = None,
    warmup_lr_rate: float | None = None,
    *,
    base_lr: float | None,
) -> Callable[[int], float]:
    """The multiplier of ``cosine_warmup_with_min_lr``."""
    w, n = _warmup_and_training(num_warmup_steps, num_training_steps)
    return partial(
        _cosine_warmup_with_min_lr,
        num_warmup_steps=w,
        num_training_steps=n,
        num_cycles=_validate.real("num_cycles", num_cycles),
        min_lr_rate=_min_lr_rate(base_lr, min_lr, min_lr_rate),
        warmup_lr_rate=None
        if warmup_lr_rate is None
        else _validate.real("warmup_lr_rate", warmup_lr_rate, low=0),
    )


def warmup_stable_decay(
    num_warmup_steps: int,
    num_decay_steps: int,
    num_training_steps: int | None = None,
    num_stable_steps: int | None = None,
    warmup_type: str = "linear",
    decay_type: str = "cosine",
    min_lr_ratio: float = 0,
    num_cycles: float = 0.5,
) -> Callable[[int], float]:
    """The multiplier of ``warmup_stable_decay`` (see :func:`get_wsd_schedule`).

    Warns:
        UserWarning: both ``num_training_steps`` and ``num_stable_steps`` given.
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
    return partial(
        _warmup_stable_decay,
        num_warmup_steps=w,
        num_stable_steps=s,
        num_decay_steps=d,
        warmup_type=warmup_type,
        decay_type=decay_type,
        min_lr_ratio=_validate.real("min_lr_ratio", min_lr_ratio, low=0),
        num_cycles=_validate.real("num_cycles", num_cycles),
    )


_F = TypeVar("_F", bound=Callable[..., ScheduleLR])


def _pure(multiplier: Callable[..., Callable[[int], float]]) -> Callable[[_F], _F]:
    """Declare the factory's pure form (``FactoryContract.multiplier``): what
    ``sequence`` joins and what reaches the step function without an optimizer."""

    def attach(factory: _F) -> _F:
        factory.optreg_contract = FactoryContract(multiplier=multiplier)  # type: ignore[attr-defined]
        return factory

    return attach


# -- factories (transformers' names and signatures): the pure form in a ScheduleLR -----


@_pure(constant)
def get_constant_schedule(optimizer: Optimizer, last_epoch: int = -1) -> ScheduleLR:
    """Constant learning rate: the optimizer's lr at every step."""
    return ScheduleLR(optimizer, constant(), last_epoch=last_epoch)


@_pure(constant_with_warmup)
def get_constant_schedule_with_warmup(
    optimizer: Optimizer, num_warmup_steps: int, last_epoch: int = -1
) -> ScheduleLR:
    """Linear warmup from 0 over ``num_warmup_steps``, then the optimizer's lr.

    Raises:
        ValueError: a negative or fractional step count.
        TypeError: a step count that is not a number.
    """
    return ScheduleLR(optimizer, constant_with_warmup(num_warmup_steps), last_epoch=last_epoch)


@_pure(linear)
def get_linear_schedule_with_warmup(
    optimizer: Optimizer, num_warmup_steps: int, num_training_steps: int, last_epoch: int = -1
) -> ScheduleLR:
    """Linear warmup from 0, then linear decay to 0 at ``num_training_steps``.

    Raises:
        ValueError: a negative or fractional step count, or warmup beyond training.
        TypeError: a step count that is not a number.
    """
    return ScheduleLR(optimizer, linear(num_warmup_steps, num_training_steps), last_epoch)


@_pure(cosine)
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
    fn = cosine(num_warmup_steps, num_training_steps, num_cycles)
    return ScheduleLR(optimizer, fn, last_epoch)


@_pure(cosine_with_restarts)
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
    fn = cosine_with_restarts(num_warmup_steps, num_training_steps, num_cycles)
    return ScheduleLR(optimizer, fn, last_epoch)


@_pure(polynomial)
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
    fn = polynomial(
        num_warmup_steps, num_training_steps, lr_end, power, base_lr=default_lr(optimizer)
    )
    return ScheduleLR(optimizer, fn, last_epoch)


@_pure(inverse_sqrt)
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
    return ScheduleLR(optimizer, inverse_sqrt(num_warmup_steps, timescale), last_epoch=last_epoch)


@_pure(cosine_with_min_lr)
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
    fn = cosine_with_min_lr(
        num_warmup_steps,
        num_training_steps,
        num_cycles,
        min_lr,
        min_lr_rate,
        base_lr=default_lr(optimizer),
    )
    return ScheduleLR(optimizer, fn, last_epoch)


@_pure(cosine_warmup_with_min_lr)
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
    fn = cosine_warmup_with_min_lr(
        num_warmup_steps,
        num_training_steps,
        num_cycles,
        min_lr,
        min_lr_rate,
        warmup_lr_rate,
        base_lr=default_lr(optimizer),
    )
    return ScheduleLR(optimizer, fn, last_epoch)


@_pure(warmup_stable_decay)
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
    fn = warmup_stable_decay(
        num_warmup_steps,
        num_decay_steps,
        num_training_steps,
        num_stable_steps,
        warmup_type,
        decay_type,
        min_lr_ratio,
        num_cycles,
    )
    return ScheduleLR(optimizer, fn, last_epoch)
