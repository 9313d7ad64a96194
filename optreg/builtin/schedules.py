"""Builtin learning-rate schedules: pure step -> multiplier functions.

Each schedule is a module-level function ``f(step, *, ...) -> float`` bound with
`functools.partial()` (so it pickles) and wrapped in ``LambdaLR`` only by the
``get_*_schedule*`` factories, which validate their arguments once. Names, defaults,
formulas and errors are those of the ``transformers`` 5.x functions of the same
names (``/shared/REFERENCE.md``), with two deliberate differences:

* arguments the reference accepts but cannot use (negative or NaN step counts,
  ``num_warmup_steps > num_training_steps``, a zero learning rate under ``min_lr``,
  a non-positive ``timescale``) raise `ValueError` at construction;
* where the reference divides by zero (``polynomial`` with ``num_warmup_steps ==
  num_training_steps`` at that step) the limit value ``lr_end / lr`` is returned.

Each factory's pure form (``cosine``, ``linear``, ...: the arguments, and the optimizer's
default lr where one is read, -> the step function) is public and declared as the factory's
``FactoryContract.multiplier``: ``sequence`` joins them, and they need no optimizer.
The metric-driven ``greedy`` schedule lives in `optreg.builtin.greedy`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from torch.optim import Optimizer

from optreg._core.contract import FactoryContract
from optreg.builtin.multipliers import (  # noqa: F401 (the step functions: old pickles name them here)
    _constant,
    _constant_with_warmup,
    _cosine,
    _cosine_warmup_with_min_lr,
    _cosine_with_restarts,
    _inverse_sqrt,
    _linear,
    _polynomial,
    _warmup_stable_decay,
    constant,
    constant_with_warmup,
    cosine,
    cosine_warmup_with_min_lr,
    cosine_with_min_lr,
    cosine_with_restarts,
    inverse_sqrt,
    linear,
    polynomial,
    warmup_stable_decay,
)
from optreg.builtin.schedule_lr import ScheduleLR, default_lr

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
