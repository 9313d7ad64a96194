"""The builtin schedules' pure forms: step -> multiplier of the optimizer's initial lr.

Each schedule is a module-level function ``f(step, *, ...) -> float``; its public pure form
(``cosine``, ``linear``, ...) validates the arguments once and binds them with
`functools.partial()` (so it pickles). The factories of `optreg.builtin.schedules`
wrap a pure form in a ``ScheduleLR``; ``sequence`` joins them; a plot reads them with no
optimizer. Formulas and errors are those of ``/shared/REFERENCE.md`` (see the schedules
module for the two deliberate differences).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from functools import partial, wraps
from typing import Any, TypeVar

from optreg._core import validate as _validate
from optreg._core.errors import WarmupLongerThanTrainingWarning, user_stacklevel
from optreg.builtin.schedule_lr import rate_of_min_lr, required_lr

__all__ = [
    "constant",
    "constant_with_warmup",
    "cosine",
    "cosine_warmup_with_min_lr",
    "cosine_with_min_lr",
    "cosine_with_restarts",
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


# -- pure schedules: step -> multiplier of the initial lr ----------------------------


def _warmup(step: int, num_warmup_steps: int) -> float:
    """The linear warmup every warmup schedule but two starts with: 0 to 1."""
    return float(step) / float(max(1, num_warmup_steps))


_Shape = TypeVar("_Shape", bound=Callable[..., float])


def _after_warmup(shape: _Shape) -> _Shape:
    """``shape`` joined after the linear warmup, once for every schedule that has it:
    steps below ``num_warmup_steps`` take `_warmup`, the others ``shape`` (which sees
    the absolute step). The joined function keeps ``shape``'s name, so pickles of a bound
    schedule name it as before."""

    @wraps(shape)
    def joined(step: int, *, num_warmup_steps: int, **kwargs: Any) -> float:
        if step < num_warmup_steps:
            return _warmup(step, num_warmup_steps)
        return shape(step, num_warmup_steps=num_warmup_steps, **kwargs)

    return joined  # type: ignore[return-value]


def _constant(step: int) -> float:
    return 1.0


@_after_warmup
def _constant_with_warmup(step: int, *, num_warmup_steps: int) -> float:
    return 1.0


@_after_warmup
def _linear(step: int, *, num_warmup_steps: int, num_training_steps: int) -> float:
    return max(
        0.0,
        float(num_training_steps - step) / float(max(1, num_training_steps - num_warmup_steps)),
    )


@_after_warmup
def _cosine(
    step: int,
    *,
    num_warmup_steps: int,
    num_training_steps: int,
    num_cycles: float,
    min_lr_rate: float = 0.0,
) -> float:
    progress = float(step - num_warmup_steps) / float(max(1, num_training_steps - num_warmup_steps))
    factor = 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress))
    return max(0.0, factor * (1 - min_lr_rate) + min_lr_rate)


@_after_warmup
def _cosine_with_restarts(
    step: int, *, num_warmup_steps: int, num_training_steps: int, num_cycles: float
) -> float:
    progress = float(step - num_warmup_steps) / float(max(1, num_training_steps - num_warmup_steps))
    if progress >= 1.0:
        return 0.0
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((float(num_cycles) * progress) % 1.0))))


@_after_warmup
def _polynomial(
    step: int,
    *,
    num_warmup_steps: int,
    num_training_steps: int,
    lr_end: float,
    power: float,
    lr_init: float,
) -> float:
    decay_steps = num_training_steps - num_warmup_steps
    if step > num_training_steps or decay_steps == 0:
        return lr_end / lr_init  # the end value (and the limit where decay_steps is 0)
    pct_remaining = 1 - (step - num_warmup_steps) / decay_steps
    decay = (lr_init - lr_end) * pct_remaining**power + lr_end
    return float(decay / lr_init)


@_after_warmup
def _inverse_sqrt(step: int, *, num_warmup_steps: int, timescale: float) -> float:
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
    """The multiplier of ``linear`` (see `get_linear_schedule_with_warmup()`)."""
    w, n = _warmup_and_training(num_warmup_steps, num_training_steps)
    return partial(_linear, num_warmup_steps=w, num_training_steps=n)


def cosine(
    num_warmup_steps: int, num_training_steps: int, num_cycles: float = 0.5
) -> Callable[[int], float]:
    """The multiplier of ``cosine`` (see `get_cosine_schedule_with_warmup()`)."""
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
    lr_init = required_lr(base_lr)
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
        min_lr_rate=rate_of_min_lr(base_lr, min_lr, min_lr_rate),
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
        min_lr_rate=rate_of_min_lr(base_lr, min_lr, min_lr_rate),
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
    """The multiplier of ``warmup_stable_decay`` (see `get_wsd_schedule()`).

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
