"""Checking values: the one validation dialect of optreg, used by the API, builtins, CLI and kit.

Every check names the argument, shows the value and says what is allowed::

    `num_cycles` must be a finite number, got nan
    `patience` must be an int >= 0, got -1

Numbers are anything `numbers.Real` but ``bool`` (so NumPy scalars count and
come back as Python numbers); sequences are any non-string
`Sequence` (so a Hydra ``ListConfig`` counts) and come back
as tuples.

`hyperparameters()` is the generic layer ``get_optimizer`` applies before a
factory runs: it checks only what the factory declares, from the defaults in its
signature (and that a learning rate given as a param-group option through
``overrides=`` is not negative, which torch does not check). Optimizer-specific
rules (betas in ``[0, 1)``, ``eps >= 0``) are the constructor's own, as in torch.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from optreg._core import signature as _signature

__all__ = [
    "MAX_STEPS",
    "allowed_text",
    "count",
    "hyperparameters",
    "is_real",
    "is_tensor",
    "per_group",
    "real",
    "reals",
    "schedule_arguments",
    "steps",
    "warmup_steps",
]


def is_real(value: object) -> bool:
    """True for a real number that is not a bool (int, float, NumPy scalars, ...)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _python(value: numbers.Real) -> int | float:
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def allowed_text(
    low: float | None, high: float | None, *, low_open: bool = False, high_open: bool = False
) -> str:
    """Say which numbers a range allows: ``">= 0"``, ``"> 0"``, ``"in [0.0, 1.0)"``."""
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high}"
    return "a finite number"


def real(
    what: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    finite: bool = True,
    message: str = "`{what}` must be {allowed}, got {value!r}",
) -> float:
    """Return ``value`` as a float, checked against the range.

    Args:
        what: the argument's name, as the message shows it.
        value: the value given.
        low / high: bounds (None: unbounded); ``low_open`` / ``high_open`` exclude them.
        finite: reject infinities (NaN is always rejected).
        message: the ValueError text; ``{what}``, ``{allowed}`` and ``{value}`` are filled in.

    Raises:
        TypeError: not a real number (a str, a bool, None, ...).
        ValueError: NaN, infinite (when ``finite``) or outside the range.
    """
    if not is_real(value):
        raise TypeError(f"`{what}` must be a number, got {type(value).__name__}: {value!r}")
    try:
        v = float(value)  # type: ignore[arg-type]
    except OverflowError:  # an int beyond the float range (10**400)
        v = math.inf if value > 0 else -math.inf  # type: ignore[operator]
    in_range = (low is None or (v > low if low_open else v >= low)) and (
        high is None or (v < high if high_open else v <= high)
    )
    if math.isnan(v) or (finite and math.isinf(v)) or not in_range:
        allowed = allowed_text(low, high, low_open=low_open, high_open=high_open)
        if not math.isfinite(v) and (low is not None or high is not None):
            allowed = f"a finite number {allowed}"
        raise ValueError(message.format(what=what, allowed=allowed, value=value))
    return v


def count(what: str, value: object, minimum: int = 0) -> int:
    """Return ``value``, an int (not a bool, not a float) ``>= minimum``.

    Raises:
        ValueError: anything else, with the value shown.
    """
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"`{what}` must be an int >= {minimum}, got {value!r}")
    return int(value)


#: The largest step count: schedules compute in float64, exact for integers up to 2**53.
MAX_STEPS = 2**53


def steps(what: str, value: object, *, low: int = 0, high: int = MAX_STEPS) -> int:
    """Return a step count as an int; whole floats (``10.0``) are accepted. The one check
    of a step count, however it arrives (an argument, a config, a command-line flag).

    Args:
        what: the argument's name, for the message.
        value: the count.
        low: the least count allowed.
        high: the largest count allowed (default `MAX_STEPS`).

    Raises:
        TypeError: not a number.
        ValueError: NaN, infinite, fractional, below ``low`` or above ``high``.
    """
    if not is_real(value):
        raise TypeError(
            f"`{what}` must be a whole number of steps >= {low}, got "
            f"{type(value).__name__}: {value!r:.80}"
        )
    if isinstance(value, numbers.Integral):
        count = int(value)
    else:
        v = float(value)  # type: ignore[arg-type]
        if not (math.isfinite(v) and v.is_integer()):
            raise ValueError(f"`{what}` must be a whole number of steps >= {low}, got {value!r}")
        count = int(v)
    if count < low:
        raise ValueError(f"`{what}` must be >= {low}, got {value!r}")
    if count > high:
        why = " (schedules compute in float64)" if high == MAX_STEPS else ""
        shown = repr(value)
        if len(shown) > 40:  # 10**400
            shown = f"{shown[:12]}... ({len(shown)} digits)"
        raise ValueError(f"`{what}` must be at most {high:,}{why}, got {shown}")
    return count


def warmup_steps(value: object, num_training_steps: object = None) -> int:
    """``num_warmup_steps`` as a count: a float in (0, 1) is that fraction of
    ``num_training_steps``, rounded up, as transformers reads a float
    ``TrainingArguments.warmup_steps``; whole numbers (``1.0`` too) are steps.

    Raises:
        TypeError: not a number.
        ValueError: a fraction without ``num_training_steps``, or an invalid count.
    """
    if isinstance(value, float) and 0.0 < value < 1.0:
        if num_training_steps is None:
            raise ValueError(
                f"`num_warmup_steps` {value!r} is a fraction of `num_training_steps`, which "
                "was not given; pass num_training_steps (or a whole number of warmup steps)"
            )
        return math.ceil(steps("num_training_steps", num_training_steps) * value)
    return steps("num_warmup_steps", value)


def reals(
    what: str, value: object, *, length: int | None = None, minimum: int = 1
) -> tuple[float, ...]:
    """Return a sequence of finite numbers as a tuple of floats.

    Args:
        what: the argument's name.
        value: any non-string sequence (tuple, list, ``ListConfig``...).
        length: the exact length required, if any.
        minimum: the least length allowed when ``length`` is None.

    Raises:
        TypeError: not a sequence of numbers.
        ValueError: the wrong length, or a NaN / infinite element.
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(
            f"`{what}` must be a sequence of numbers, got {type(value).__name__}: {value!r}"
        )
    items = list(value)
    if (length is not None and len(items) != length) or len(items) < minimum:
        size = f"{length}" if length is not None else f"{minimum} or more"
        raise ValueError(f"`{what}` must have {size} numbers, got {len(items)}: {value!r}")
    if not all(is_real(v) for v in items):
        raise TypeError(f"`{what}` must be a sequence of numbers, got {value!r}")
    try:
        floats = tuple(float(v) for v in items)
    except OverflowError:
        floats = (math.inf,)
    if not all(math.isfinite(f) for f in floats):
        raise ValueError(f"`{what}` must hold finite numbers, got {value!r}")
    return floats


def per_group(what: str, value: object, n_groups: int) -> list[float]:
    """One number ``>= 0`` per param group: a single number, or a sequence of ``n_groups``.

    Raises:
        ValueError: the wrong count, or a value that is not a number ``>= 0``.
    """
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        if len(value) != n_groups:
            raise ValueError(f"expected {n_groups} {what}s, got {len(value)}")
        values = list(value)
    else:
        values = [value] * n_groups
    for v in values:
        if not is_real(v) or math.isnan(float(v)) or float(v) < 0:
            raise ValueError(f"`{what}` must be a number >= 0 (or one per group), got {value!r}")
    return [float(v) for v in values]


_STEP_ARGS = ("num_warmup_steps", "num_training_steps")


def schedule_arguments(
    name: str,
    label: str,
    factory: Any,
    num_warmup_steps: object,
    num_training_steps: object,
    specific: Mapping[str, Any],
) -> dict[str, Any]:
    """The keyword arguments ``factory(optimizer, **them)`` gets, as ``get_scheduler`` does.

    The step counts are checked (a warmup fraction resolved) and passed to a factory
    that declares them; a missing one it requires, or any other required argument,
    is transformers' ``ValueError``; a keyword it does not take is a ``TypeError``.

    Raises:
        ValueError: ``"<name> requires `<arg>`, please provide that argument."``, or an
            invalid step count.
        TypeError: a step count that is not a number, or an unknown keyword.
    """
    counts: dict[str, int | None] = {}
    for arg, value in (
        ("num_warmup_steps", num_warmup_steps),
        ("num_training_steps", num_training_steps),
    ):
        try:
            if value is None:
                counts[arg] = None
            elif arg == "num_warmup_steps":  # a float in (0, 1): a fraction of training
                counts[arg] = warmup_steps(value, num_training_steps)
            else:
                counts[arg] = steps(arg, value)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{name}: {e}") from None
    params = _signature.parameters(factory)
    call: dict[str, Any] = {}
    for arg, count in counts.items():
        if params is not None and arg not in params:
            continue  # a schedule without a warmup (or an end) is not given one
        if count is None and params is not None and params[arg].default is params[arg].empty:
            raise ValueError(f"{name} requires `{arg}`, please provide that argument.")
        if count is not None:
            call[arg] = count
    _signature.check_keywords(label, factory, specific, reserved=_STEP_ARGS)
    call.update(specific)
    for arg in _signature.describe(factory)[1]:
        if arg not in call:
            raise ValueError(f"{name} requires `{arg}`, please provide that argument.")
    return call


def _declared(default: object) -> str | None:
    """What a default declares: ``"bool"``, ``"real"``, ``"reals"`` (a tuple of numbers) or None."""
    if isinstance(default, bool):
        return "bool"
    if is_real(default):
        return "real"
    if isinstance(default, tuple) and default and all(is_real(v) for v in default):
        return "reals"
    return None


def hyperparameters(
    label: str, factory: Any, kwargs: Mapping[str, Any], *, group: bool = False
) -> dict[str, Any]:
    """Check and normalise keyword arguments against what ``factory``'s defaults declare.

    A keyword whose default is a bool must be a bool; one whose default is a number
    must be a finite number (or a one-element tensor, which torch accepts for ``lr``,
    finite too); one whose default is a tuple of numbers must be a
    sequence of as many finite numbers (or 2 or more, for a pair such as ``betas``:
    AdEMAMix takes three), returned as a tuple. NumPy scalars become Python numbers.
    Everything else passes unchanged, for the factory itself to judge. With ``group``
    (param-group options, which torch's constructors do not check), ``lr`` must also be
    ``>= 0``.

    Raises:
        TypeError: a value of the wrong kind, named with ``label`` and the value.
        ValueError: NaN or infinite, named likewise.
    """
    params = _signature.parameters(factory)
    if params is None:
        return dict(kwargs)
    out = dict(kwargs)
    for key, value in kwargs.items():
        param = params.get(key)
        kind = None if param is None else _declared(param.default)
        if kind is None:
            continue
        if is_tensor(value):
            _check_tensor(label, key, value, group=group)
            continue
        if isinstance(value, Sequence) and any(is_tensor(v) for v in value):
            continue  # torch takes tensor betas; the constructor checks them
        try:
            if kind == "bool":
                if not _is_bool(value):
                    raise TypeError(
                        f"`{key}` must be True or False, got {type(value).__name__}: {value!r}"
                    )
                out[key] = bool(value)  # type: ignore[arg-type]
            elif kind == "real":
                real(key, value, low=0 if key == "lr" and group else None)
                out[key] = _python(value)  # type: ignore[arg-type]
            else:
                out[key] = reals(key, value, minimum=min(2, len(param.default)))  # type: ignore[union-attr, arg-type]
        except (TypeError, ValueError) as e:
            raise type(e)(f"{label}: {e}") from None
    return out


def real_parameters(label: str, index: int, params: Iterable[Any], why: str) -> None:
    """Refuse complex parameters in param group ``index`` of the optimizer ``label``.

    Raises:
        ValueError: a complex tensor (its dtype and shape are shown, and ``why``).
    """
    for p in params:
        if p.is_complex():
            raise ValueError(
                f"{label} does not support complex parameters: param group {index} has a "
                f"{p.dtype} tensor of shape {tuple(p.shape)} ({why})"
            )


def is_tensor(value: object) -> bool:
    """True for a torch tensor (checked without importing torch)."""
    return type(value).__module__.startswith("torch") and hasattr(value, "dim")


def _is_bool(value: object) -> bool:
    return isinstance(value, bool) or type(value).__name__ == "bool_"  # NumPy's bool


def _check_tensor(label: str, key: str, value: Any, *, group: bool) -> None:
    """A one-element tensor given for a number (torch takes ``lr`` as a tensor): finite
    (torch does not look at a NaN tensor), and ``>= 0`` for a group's ``lr`` (a negative
    keyword one is the constructor's to refuse)."""
    if value.numel() != 1:
        return  # not a number in disguise; the constructor judges it
    v = float(value.detach().reshape(()).item())
    if math.isfinite(v) and not (group and key == "lr" and v < 0):
        return
    allowed = "a finite number >= 0" if key == "lr" else "a finite number"
    raise ValueError(f"{label}: `{key}` must be {allowed}, got {value!r}")
