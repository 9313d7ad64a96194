"""The user-facing functions: build optimizers and schedulers by name."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from optreg._discovery import call_hook, optimizers, schedulers
from optreg._errors import close_matches
from optreg._registry import Entry, EntryInfo

__all__ = [
    "get_optimizer",
    "get_optimizer_cls",
    "get_scheduler",
    "list_optimizers",
    "list_schedulers",
    "optimizer_info",
    "register_optimizer",
    "register_scheduler",
    "scheduler_info",
]

register_optimizer = optimizers.register
register_scheduler = schedulers.register
_STEP_ARGS = ("num_warmup_steps", "num_training_steps")


def list_optimizers() -> list[str]:
    """Return the sorted canonical names of every registered optimizer."""
    return optimizers.names()


def list_schedulers() -> list[str]:
    """Return the sorted canonical names of every registered scheduler."""
    return schedulers.names()


def optimizer_info(name: str) -> EntryInfo:
    """Describe an optimizer name (imports its target to read the signature).

    Raises:
        UnknownNameError: no optimizer has that name.
        AmbiguousNameError: two third-party plugins provide it.
    """
    return optimizers.info(name)


def scheduler_info(name: str) -> EntryInfo:
    """Describe a scheduler name (imports its target to read the signature).

    Raises:
        UnknownNameError: no scheduler has that name.
        AmbiguousNameError: two third-party plugins provide it.
    """
    return schedulers.info(name)


def get_optimizer_cls(name: str) -> Callable[..., Any]:
    """Return the factory ``(params, **kwargs) -> Optimizer`` behind ``name``.

    Use it where a class is expected, e.g.
    ``ZeroRedundancyOptimizer(params, optimizer_class=get_optimizer_cls("adamw"))``.

    Raises:
        UnknownNameError: no optimizer has that name.
        AmbiguousNameError: two third-party plugins provide it.
        MissingDependencyError: the name needs an extra that is not installed.
        PluginLoadError: the plugin providing it cannot be imported.
    """
    return optimizers.load(name)  # type: ignore[no-any-return]


def get_optimizer(
    name: str,
    params: Any,
    *,
    no_decay: Iterable[str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    **kwargs: Any,
) -> Any:
    """Build the optimizer registered as ``name``.

    Args:
        name: an optimizer name (``optreg list optimizers``), plain or ``dist:name``.
        params: an iterable of tensors, of param-group dicts, of ``(name, tensor)``
            pairs, or an ``nn.Module``. With a module and ``weight_decay > 0``,
            biases, norm weights and 1-D parameters get ``weight_decay=0.0``.
        no_decay: name patterns exempt from weight decay (replaces the default rule).
        overrides: per-name-pattern group options, e.g. ``{"embed": {"lr": 1e-4}}``.
        **kwargs: hyperparameters of the optimizer (``lr``, ``weight_decay``, ...).

    Returns:
        The optimizer (a ``torch.optim.Optimizer``).

    Raises:
        UnknownNameError: no optimizer has that name (suggests close names).
        AmbiguousNameError: two third-party plugins provide it.
        MissingDependencyError: the name needs an extra that is not installed.
        PluginLoadError: the plugin providing it cannot be imported.
        TypeError: a keyword the optimizer does not accept, or bad ``params``.
        ValueError: an invalid hyperparameter value or an empty parameter list.
    """
    from optreg.params import param_groups

    entry = optimizers.resolve(name)
    factory = optimizers.load(entry)
    _check_kwargs(entry, factory, kwargs, skip_first=True)
    _check_values(entry, kwargs)
    for options in (overrides or {}).values():
        _check_values(entry, options)
    groups = param_groups(
        params,
        weight_decay=kwargs.get("weight_decay", _default(factory, "weight_decay")),
        no_decay=no_decay,
        overrides=overrides,
    )
    call_hook("optreg_prepare_optimizer", name=entry.name, param_groups=groups, kwargs=kwargs)
    optimizer = factory(groups, **kwargs)
    call_hook("optreg_optimizer_created", name=entry.name, optimizer=optimizer)
    return optimizer


def get_scheduler(
    name: str,
    optimizer: Any,
    num_warmup_steps: int | None = None,
    num_training_steps: int | None = None,
    scheduler_specific_kwargs: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """Build the learning-rate scheduler registered as ``name``.

    Compatible with ``transformers.get_scheduler``: the step counts are passed to
    the schedules that declare them and a missing required one raises ValueError.

    Args:
        name: a scheduler name (``optreg list schedulers``), or a ``SchedulerType``.
        optimizer: the optimizer whose learning rate is scheduled.
        num_warmup_steps: warmup steps, for schedules that have a warmup.
        num_training_steps: total training steps, for schedules that decay.
        scheduler_specific_kwargs: extra arguments of the schedule (as in transformers).
        **kwargs: more schedule arguments; merged over ``scheduler_specific_kwargs``.

    Returns:
        The scheduler (a ``torch.optim.lr_scheduler.LRScheduler`` for builtins).

    Raises:
        UnknownNameError: no scheduler has that name.
        ValueError: ``"<name> requires `num_warmup_steps`"`` (or ``num_training_steps``)
            when the schedule needs it, and invalid values (negative or NaN steps).
        TypeError: a keyword the schedule does not accept.
    """
    name = getattr(name, "value", name)  # SchedulerType members
    entry = schedulers.resolve(name)
    factory = schedulers.load(entry)
    specific = dict(scheduler_specific_kwargs or {})
    specific.update(kwargs)
    steps: dict[str, int | None] = {}
    for arg, value in (
        ("num_warmup_steps", num_warmup_steps),
        ("num_training_steps", num_training_steps),
    ):
        steps[arg] = _check_steps(entry.name, arg, value)
    num_warmup_steps, num_training_steps = steps["num_warmup_steps"], steps["num_training_steps"]
    params = _parameters(factory)
    call: dict[str, Any] = {}
    for arg, value in (
        ("num_warmup_steps", num_warmup_steps),
        ("num_training_steps", num_training_steps),
    ):
        if params is None:  # no signature to read: pass what we were given
            if value is not None:
                call[arg] = value
            continue
        if arg not in params:
            continue
        if value is None and params[arg].default is inspect.Parameter.empty:
            raise ValueError(f"{entry.name} requires `{arg}`, please provide that argument.")
        if value is not None:
            call[arg] = value
    _check_kwargs(entry, factory, specific, skip_first=True, reserved=_STEP_ARGS)
    scheduler = factory(optimizer, **call, **specific)
    call_hook("optreg_scheduler_created", name=entry.name, scheduler=scheduler)
    return scheduler


def _check_steps(schedule: str, arg: str, value: object) -> int | None:
    """Return a step count as an int; whole floats (``100.0``) are accepted.

    Raises:
        TypeError: not a number (a str, a bool, ...).
        ValueError: NaN, infinite, fractional or negative.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{schedule}: `{arg}` must be an int, got {type(value).__name__}: {value!r}"
        )
    if isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer()):
            raise ValueError(f"{schedule}: `{arg}` must be a whole number >= 0, got {value!r}")
        value = int(value)
    if value < 0:
        raise ValueError(f"{schedule}: `{arg}` must be >= 0, got {value}")
    return value


def _parameters(factory: Any) -> Mapping[str, inspect.Parameter] | None:
    try:
        return inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return None


_NON_NEGATIVE = ("lr", "weight_decay", "eps", "momentum")
#: Standard hyperparameters that are numbers (or pairs of numbers, or None): a value of
#: another type is rejected here, because the optimizers' own checks then fail with
#: messages that do not show it (``'<=' not supported between 'float' and 'str'``).
_NUMERIC = (*_NON_NEGATIVE, "betas", "alpha", "dampening", "lr_decay", "rho", "beta1")


def _check_values(entry: Entry, kwargs: Mapping[str, Any]) -> None:
    """Reject NaN anywhere, non-numbers and negative / infinite standard hyperparameters."""
    for key, value in kwargs.items():
        values = value if isinstance(value, tuple) else (value,)
        if key in _NUMERIC and not _numbers(value, pair=key == "betas", allow_tuple=key == "eps"):
            raise TypeError(
                f"{entry.kind} {entry.name!r}: {key} must be "
                + ("a tuple of 2 or more numbers" if key == "betas" else "a number")
                + f", got {type(value).__name__}: {value!r}"
            )
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            if math.isnan(v):
                raise ValueError(
                    f"{entry.kind} {entry.name!r}: {key} must be a number, got {value!r}"
                )
            if key in _NON_NEGATIVE and (v < 0 or math.isinf(v)):
                raise ValueError(
                    f"{entry.kind} {entry.name!r}: {key} must be finite and >= 0, got {value!r}"
                )


def _numbers(value: object, *, pair: bool, allow_tuple: bool = False) -> bool:
    """True for None, a real number or tensor, or (``pair``) a tuple / list of >= 2 of them."""
    import torch

    def real(v: object) -> bool:
        return v is None or isinstance(v, (int, float, torch.Tensor))

    # a tuple is a pair of numbers only for betas, or for eps (Adafactor's (eps1, eps2))
    if pair or (isinstance(value, tuple) and allow_tuple):
        items = value if isinstance(value, (tuple, list)) else None
        return (
            items is not None
            and (len(items) >= 2 or not pair)
            and all(real(v) and v is not None for v in items)
        )
    return real(value)


def _default(factory: Any, arg: str) -> Any:
    params = _parameters(factory)
    if params is None or arg not in params or params[arg].default is inspect.Parameter.empty:
        return None
    return params[arg].default


def _check_kwargs(
    entry: Entry,
    factory: Any,
    kwargs: Mapping[str, Any],
    *,
    skip_first: bool,
    reserved: tuple[str, ...] = (),
) -> None:
    params = _parameters(factory)
    if params is None or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    accepted = [
        p.name for p in params.values() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    if skip_first and accepted and next(iter(params.values())).name == accepted[0]:
        accepted = accepted[1:]
    accepted = [a for a in accepted if a not in reserved]
    for key in kwargs:
        if key not in accepted:
            hint = close_matches(key, accepted, n=1)
            did = f"; did you mean {hint[0]!r}?" if hint else ""
            raise TypeError(
                f"{entry.kind} {entry.name!r} ({entry.target_ref}) got an unexpected keyword "
                f"argument {key!r}{did} Accepted keywords: {', '.join(accepted) or '(none)'}"
            )
