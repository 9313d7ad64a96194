"""The user-facing functions: build optimizers and schedulers by name."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from optreg._core import loading

from optreg._build import records

from optreg._core import signature as _signature

from optreg._core import validate
from optreg._core.contract import FactoryContract
from optreg._plugins.discovery import call_hook, implementers
from optreg._core.entry import Entry, EntryInfo
from optreg._core.errors import OptregPluginWarning
from optreg._core.call import label, optimizer_call
from optreg._core.registry import optimizers, schedulers

if TYPE_CHECKING:
    import torch

    from optreg.params._grouping import Grouping

__all__ = [
    "get_optimizer",
    "get_scheduler",
    "list_optimizers",
    "list_schedulers",
    "optimizer_info",
    "register_optimizer",
    "register_scheduler",
    "scheduler_info",
]

register_optimizer = optimizers.register
"""Register an optimizer factory under a name at run time (``Registry.register``): a call
``register_optimizer(name, factory, *, aliases=(), description=None, override=False)`` or
a decorator ``@register_optimizer(name)``."""
register_scheduler = schedulers.register
"""Register a scheduler factory under a name at run time; as `register_optimizer`."""


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


def get_optimizer(
    name: str,
    params: Any,
    *,
    no_decay: Iterable[str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    rules: Sequence[Mapping[str, Any]] | None = None,
    layer_decay: float | None = None,
    layer_pattern: str | None = None,
    **kwargs: Any,
) -> torch.optim.Optimizer:
    """Build the optimizer registered as ``name``.

    Args:
        name: an optimizer name (``optreg list optimizers``), plain or ``dist:name``.
        params: an iterable of tensors, of param-group dicts, of ``(name, tensor)``
            pairs, or an ``nn.Module``. With a module and ``weight_decay > 0``,
            biases, norm weights and 1-D parameters get ``weight_decay=0.0``.
        no_decay: name patterns exempt from weight decay (replaces the default rule).
        overrides: per-name-pattern group options, e.g. ``{"embed": {"lr": 1e-4}}``.
        rules: declarative param-group rules, plain data: selectors (``match``,
            ``regex``, ``module``, ``ndim``, ``shape``) and the options they set
            (``lr``, ``lr_scale``, ``weight_decay``, any hyperparameter; ``optimizer``
            for a composite such as ``muon_adamw``); see the rules guide.
        layer_decay: layer-wise lr decay (``0.75``: each layer below the top gets
            0.75 times the lr of the one above).
        layer_pattern: a regex whose first group is a parameter name's layer index.
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
    from optreg.params._grouping import Grouping
    from optreg.params._kinds import one_walk  # imports torch

    grouping = Grouping.of(
        no_decay=no_decay,
        overrides=overrides,
        rules=rules,
        layer_decay=layer_decay,
        layer_pattern=layer_pattern,
        where=f"get_optimizer({name!r})",
    )
    call = optimizer_call(name, kwargs, grouping.option_sets())
    entry, factory, contract, kwargs = call.entry, call.factory, call.contract, call.kwargs
    grouping = grouping.with_options(call.group_options)
    params = _read_once(params)  # for the groups, and for the names a record keeps
    build = (
        _build_routed
        if contract.routes_params
        else _build_sided
        if contract.sides is not None
        else _build_grouped
    )
    with one_walk():  # a module's parameters are walked once for all of it
        optimizer = build(entry, factory, params, grouping, kwargs)
        names = records.parameter_names(params)
    records.remember_optimizer(optimizer, entry, kwargs, grouping.given(), names)
    call_hook("optreg_optimizer_created", name=entry.name, optimizer=optimizer)
    return optimizer


def _read_once(params: Any) -> Any:
    """An iterable of tensors, pairs or groups as a list (a generator is read once)."""
    import torch

    one = (torch.Tensor, torch.nn.Module, Mapping, str, bytes)
    return list(params) if isinstance(params, Iterable) and not isinstance(params, one) else params


def _build_grouped(
    entry: Entry, factory: Any, params: Any, grouping: Grouping, kwargs: dict[str, Any]
) -> torch.optim.Optimizer:
    """Group the parameters, run the prepare hook on the groups, build."""
    groups = grouping.groups(
        params,
        weight_decay=kwargs.get("weight_decay", _signature.default(factory, "weight_decay")),
        lr=kwargs.get("lr", _signature.default(factory, "lr")),
    )
    call_hook(
        "optreg_prepare_optimizer", undo=True, name=entry.name, param_groups=groups, kwargs=kwargs
    )
    return _checked_optimizer(entry, loading.first_call(entry, factory, groups, **kwargs))


def _build_sided(
    entry: Entry, factory: Any, params: Any, grouping: Grouping, kwargs: dict[str, Any]
) -> torch.optim.Optimizer:
    """A composite that declares its sides (`optreg.Sides`) and takes param groups: route,
    group and tag the parameters once, run the prepare hook on the tagged groups, build."""
    from optreg.params._sides import side_groups

    sides = loading.contract(entry).sides
    if sides is None:  # pragma: no cover - chosen by its contract
        raise TypeError(f"{label(entry)} declares no sides")
    read = {"lr", "weight_decay", *sides.lr.values(), *sides.weight_decay.values()}
    hyperparameters = {k: _signature.default(factory, k) for k in read} | kwargs
    groups, _ = side_groups(params, sides, hyperparameters, grouping)
    call_hook(
        "optreg_prepare_optimizer", undo=True, name=entry.name, param_groups=groups, kwargs=kwargs
    )
    return _checked_optimizer(entry, loading.first_call(entry, factory, groups, **kwargs))


def _build_routed(
    entry: Entry, factory: Any, params: Any, grouping: Grouping, kwargs: dict[str, Any]
) -> torch.optim.Optimizer:
    """A factory that splits the parameters itself (muon_adamw): what the user gave, with
    the grouping, and the prepare hook to run on the groups it makes."""
    given = grouping.given()
    extra: dict[str, Any] = {
        "no_decay": given.pop("no_decay", None),
        "overrides": given.pop("overrides", None),
        **given,  # rules, layer_decay, layer_pattern: only when given
    }
    if _signature.takes(factory, "optreg_prepare") == "named":
        extra["optreg_prepare"] = _prepare_hook(entry.name)
    else:
        _warn_prepare_skipped(entry)
    built = loading.first_call(entry, factory, params, **extra, **kwargs)
    return _checked_optimizer(entry, built)


def _checked_optimizer(entry: Entry, optimizer: Any) -> torch.optim.Optimizer:
    """What the factory returned, if it is an optimizer.

    Raises:
        TypeError: it is not a ``torch.optim.Optimizer`` (the plugin is broken).
    """
    import torch

    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"{label(entry)} returned {type(optimizer).__module__}."
            f"{type(optimizer).__qualname__} ({optimizer!r:.60}), not a torch.optim.Optimizer; "
            f"the plugin providing it ({entry.provider}) is broken"
        )
    return optimizer


def _warn_prepare_skipped(entry: Entry) -> None:
    """Say so where ``optreg_prepare_optimizer`` hooks exist that a factory splitting the
    parameters itself cannot run (it takes no ``optreg_prepare``): they do not see its
    groups, which only it makes."""
    import warnings

    skipped = implementers("optreg_prepare_optimizer")
    if skipped:
        warnings.warn(
            f"{label(entry)} splits the parameters itself and takes no optreg_prepare, so "
            f"the optreg_prepare_optimizer hooks of {', '.join(skipped)} did not run for it; "
            f"its provider ({entry.provider}) can accept optreg_prepare(param_groups, "
            "kwargs) and call it on the groups it makes (see optreg.hookspecs)",
            OptregPluginWarning,
            stacklevel=4,
        )


def _prepare_hook(name: str) -> Any:
    """The ``optreg_prepare`` callable a routing factory gets: the
    ``optreg_prepare_optimizer`` hook on the groups it made, edits undone if it raises."""

    def prepare(param_groups: list[dict[str, Any]], kwargs: dict[str, Any]) -> None:
        call_hook(
            "optreg_prepare_optimizer",
            undo=True,
            name=name,
            param_groups=param_groups,
            kwargs=kwargs,
        )

    return prepare


def get_scheduler(
    name: str,
    optimizer: Any,
    num_warmup_steps: float | None = None,
    num_training_steps: int | None = None,
    scheduler_specific_kwargs: Mapping[str, Any] | None = None,
    *,
    hyperparameter: str = "lr",
    **kwargs: Any,
) -> Any:
    """Build the learning-rate scheduler registered as ``name``.

    Compatible with ``transformers.get_scheduler``: the step counts are passed to
    the schedules that declare them and a missing required one raises ValueError.

    Args:
        name: a scheduler name (``optreg list schedulers``), or a ``SchedulerType``.
        optimizer: the optimizer whose learning rate is scheduled.
        num_warmup_steps: warmup steps, for schedules that have a warmup; a float in
            (0, 1) is that fraction of ``num_training_steps``, rounded up (as
            transformers reads a float ``TrainingArguments.warmup_steps``).
        num_training_steps: total training steps, for schedules that decay.
        scheduler_specific_kwargs: extra arguments of the schedule (as in transformers).
        hyperparameter: what the schedule drives: ``"lr"``, or ``"weight_decay"`` /
            ``"momentum"`` (a group's ``momentum``, else its ``betas[0]``), each group's
            initial value times the same multipliers, with the same warmup and phases
            (a schedule that is a function of the step only: not a metric-driven one).
        **kwargs: more schedule arguments; merged over ``scheduler_specific_kwargs``.

    Returns:
        The scheduler (a ``torch.optim.lr_scheduler.LRScheduler`` for builtins).

    Raises:
        UnknownNameError: no scheduler has that name.
        ValueError: ``"<name> requires `num_warmup_steps`"`` (or ``num_training_steps``)
            when the schedule needs it, and invalid values (negative or NaN steps).
        TypeError: a keyword the schedule does not accept, or a factory that returned
            no scheduler (an object without ``step()``).
    """
    name = getattr(name, "value", name)  # SchedulerType members
    entry = schedulers.resolve(name)
    factory = schedulers.load(entry)
    loading.contract(entry)  # its signature readable (a plugin's failure contained)
    if not isinstance(getattr(optimizer, "param_groups", None), list):
        raise TypeError(
            f"{entry.name}: `optimizer` must be a torch.optim.Optimizer, got "
            f"{type(optimizer).__name__}: {optimizer!r:.80}"
        )
    if not entry.traits.own_lr:
        _check_numeric_lrs(entry, optimizer)
    specific = dict(scheduler_specific_kwargs or {})
    specific.update(kwargs)
    try:
        call = validate.schedule_arguments(
            entry.name, label(entry), factory, num_warmup_steps, num_training_steps, specific
        )
    except TypeError as e:
        kin = _kin_taking(entry, specific)
        if kin is None:
            raise
        raise TypeError(f"{e}. {kin}") from None
    if hyperparameter != "lr":
        from optreg._build.hyper import hyperparameter_scheduler

        scheduler = hyperparameter_scheduler(
            label(entry), optimizer, hyperparameter, lambda: factory(optimizer, **call)
        )
        records.remember_scheduler(
            scheduler,
            entry,
            num_warmup_steps,
            num_training_steps,
            {**specific, "hyperparameter": hyperparameter},
        )
        return scheduler
    scheduler = loading.first_call(entry, factory, optimizer, **call)
    if not callable(getattr(scheduler, "step", None)):
        raise TypeError(
            f"{label(entry)} returned {type(scheduler).__module__}."
            f"{type(scheduler).__qualname__} ({scheduler!r:.60}), not a scheduler (an object "
            f"with step(), such as a torch LRScheduler); the plugin providing it "
            f"({entry.provider}) is broken"
        )
    _warn_if_it_fights(entry, optimizer, scheduler, num_training_steps)
    records.remember_scheduler(scheduler, entry, num_warmup_steps, num_training_steps, specific)
    call_hook("optreg_scheduler_created", name=entry.name, scheduler=scheduler)
    return scheduler


def effective_arguments(kind: str, name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments the factory of ``name`` effectively gets from ``arguments``: its
    defaults filled in and, for a schedule, the step counts as it receives them (a
    warmup fraction as steps, none for a schedule that does not declare them).

    Two spellings of one build (an explicit default vs omitted, ``constant`` given step
    counts it ignores, a warmup fraction vs the same count) give equal results.

    Raises:
        UnknownNameError: no such name.
        TypeError, ValueError: arguments the factory refuses.
    """
    registry = optimizers if kind == "optimizer" else schedulers
    entry = registry.resolve(name)
    factory = registry.load(entry)
    given = dict(arguments)
    if kind != "optimizer":
        given = validate.schedule_arguments(
            entry.name,
            label(entry),
            factory,
            given.pop("num_warmup_steps", None),
            given.pop("num_training_steps", None),
            given,
        )
    return _signature.with_defaults(factory, given)


def is_metric_driven(name: str) -> bool:
    """Whether schedule ``name`` steps with a metric (``step(metric)``, as
    ``ReduceLROnPlateau``): the one decision every integration uses, made before anything
    is built.

    From facts: the entry's [Traits][optreg.Traits] (``metric_driven=True``), or, for a
    factory that is a scheduler class, its ``step()`` signature. A function that returns
    a metric-driven scheduler says so in its traits.

    Raises:
        UnknownNameError: no scheduler has that name.
        PluginLoadError: the factory cannot be loaded.
    """
    entry = schedulers.resolve(name)
    if entry.traits.metric_driven:
        return True
    factory = schedulers.load(entry)
    return isinstance(factory, type) and _signature.step_needs_metric(factory)


def _check_numeric_lrs(entry: Entry, optimizer: Any) -> None:
    """A schedule scales each group's lr: refuse, by name, an optimizer without one.

    Raises:
        ValueError: a param group whose lr is not a number (an optimizer that computes
            its own, such as Adafactor with its relative step, holds ``lr=None``).
    """
    for i, group in enumerate(optimizer.param_groups):
        lr = group.get("lr")
        if validate.is_real(lr) or validate.is_tensor(lr):
            continue
        built = records.built_entry(optimizer)
        options = (
            f" (`optreg info {built.name}` lists the options that give it one)"
            if built is not None
            else ""
        )
        reporting = [e.name for e in schedulers.entries() if e.traits.own_lr]
        instead = (
            f", or use a schedule that reports the lr it computes: {', '.join(map(repr, reporting))}"
            if reporting
            else ""
        )
        raise ValueError(
            f"{entry.name} cannot schedule {type(optimizer).__name__}: param group {i} has "
            f"lr={lr!r}, so there is no learning rate to scale (the optimizer computes its "
            f"own). Build it with a numeric lr{options}{instead}"
        )


def _warn_if_it_fights(entry: Entry, optimizer: Any, scheduler: Any, steps: Any) -> None:
    """Warn where a decaying lr schedule drives a train/eval (schedule-free) optimizer:
    decided from the schedule's own multipliers (a LambdaLR's pure step -> multiplier
    functions), never from its name; a schedule of another kind is not judged."""
    lambdas = getattr(scheduler, "lr_lambdas", None)
    traits = records.built_traits(optimizer)
    if not lambdas or not isinstance(steps, int) or steps < 1 or not traits:
        return
    if not traits.train_eval:
        return
    every = max(1, steps // 200)
    values = [float(lambdas[0](s)) for s in range(0, steps + 1, every)]
    if values[-1] < max(values) * (1 - 1e-6):
        import warnings

        from optreg._core.errors import ScheduleFightsOptimizerWarning, user_stacklevel

        warnings.warn(
            f"schedule {entry.name!r} decays the lr (to {values[-1]:.3g} of its peak) of "
            f"a schedule-free optimizer, which averages its iterates in place of a decay: "
            "the decay shrinks the steps it averages. Use 'constant' or "
            "'constant_with_warmup' (or the optimizer's own warmup_steps)",
            ScheduleFightsOptimizerWarning,
            stacklevel=user_stacklevel(),
        )


def _kin_taking(entry: Entry, specific: Mapping[str, Any]) -> str | None:
    """Where a keyword ``entry`` does not take belongs: a schedule of the same provider
    named after it (``cosine`` -> ``cosine_with_min_lr`` for ``min_lr``), if one takes it."""
    factory = schedulers.load(entry)
    foreign = [k for k in specific if not _signature.takes(factory, k)]
    for other in sorted(schedulers.entries(), key=lambda e: (len(e.name), e.name)):
        if other is entry or other.provider != entry.provider:
            continue
        if not other.name.startswith(entry.name + "_"):
            continue
        try:
            theirs = schedulers.load(other)
        except Exception:  # unavailable: no hint from it
            continue
        takes = [k for k in foreign if _signature.takes(theirs, k) == "named"]
        if takes:
            return (
                f"{', '.join(map(repr, takes))} is an argument of the schedule {other.name!r}: "
                f"use that name"
            )
    return None
