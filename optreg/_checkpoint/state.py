"""Checkpoint records: what was built, by which name, with which arguments, for which params.

`state_dict()` wraps ``optimizer.state_dict()`` (and the scheduler's) in a record of
how [optreg.get_optimizer][] / [optreg.get_scheduler][] built them: the canonical
name and provider (distribution and version), the plain-data arguments, the schedule's
step counts, and the parameter names (FQNs) and shapes per group. `load_state_dict()`
checks the record against the objects *before* it loads anything and names what
differs; `from_state_dict()` rebuilds both objects from the record alone.

The record holds only tensors, numbers, strings, lists, tuples and dicts:
``torch.load(path, weights_only=True)`` reads it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optreg._build.api import effective_arguments
from optreg._build.records import (
    OptimizerRecord,
    ScheduleRecord,
    optimizer_record_of,
    schedule_record_of,
)
from optreg._build.spec import Spec
from optreg._core.entry import optreg_version
from optreg._core.errors import CheckpointMismatchError, CheckpointMismatchWarning
from optreg._core.validate import is_real

if TYPE_CHECKING:
    import torch

__all__ = [
    "FORMAT",
    "Differences",
    "differences",
    "from_state_dict",
    "load_state_dict",
    "state_dict",
    "unwrapped_name",
]

#: The record's ``"format"``: bumped when its layout changes incompatibly.
FORMAT = "optreg.checkpoint/1"
_MAX_LISTED = 6
# What torch's wrappers insert in a parameter's name: torch.compile (``_orig_mod``),
# FSDP1 and activation checkpointing anywhere, DDP / DataParallel a leading ``module``.
_WRAPPER_PARTS = frozenset({"_orig_mod", "_fsdp_wrapped_module", "_checkpoint_wrapped_module"})
_LEADING_WRAPPER = "module"
_NAMES_NOTE = (
    "(parameter names are compared without the _orig_mod. / module. prefixes that "
    "torch.compile and DDP add; schedule arguments as the schedule receives them, "
    "defaults filled in and a warmup fraction as steps)"
)


def unwrapped_name(name: str | None) -> str | None:
    """A parameter's name without what torch.compile, DDP, FSDP1 or activation
    checkpointing insert: ``module._orig_mod.fc.weight`` -> ``fc.weight``."""
    if name is None:
        return None
    parts = [part for part in name.split(".") if part not in _WRAPPER_PARTS]
    while len(parts) > 1 and parts[0] == _LEADING_WRAPPER:
        parts.pop(0)
    return ".".join(parts)


def _not_built(obj: Any, kind: str) -> TypeError:
    maker = "get_optimizer" if kind == "optimizer" else "get_scheduler"
    return TypeError(
        f"this {type(obj).__name__} was not built by optreg.{maker}, so its name and "
        f"arguments are unknown; build it with optreg.{maker}(...), or save its "
        "state_dict() yourself"
    )


def _groups(optimizer: Any, names: Mapping[int, str]) -> list[dict[str, Any]]:
    return [
        {
            "params": [names.get(id(p)) for p in group["params"]],
            "shapes": [list(p.shape) for p in group["params"]],
        }
        for group in optimizer.param_groups
    ]


def state_dict(optimizer: torch.optim.Optimizer, scheduler: Any = None) -> dict[str, Any]:
    """The checkpoint record of ``optimizer`` (and ``scheduler``), their states included.

    Args:
        optimizer: built by [optreg.get_optimizer][].
        scheduler: built by [optreg.get_scheduler][], or None.

    Returns:
        ``{"format", "optreg_version", "optimizer": {name, provider, provider_version,
        kwargs, no_decay, overrides, groups, state}, "scheduler": {name, provider,
        provider_version, num_warmup_steps, num_training_steps, kwargs, state} | None}``;
        ``groups`` lists each param group's parameter names (None where optreg was given
        bare tensors) and shapes. Loads with ``torch.load(weights_only=True)``.

    Raises:
        TypeError: an object optreg did not build (its name is unknown).
    """
    here = _here(optimizer, scheduler)
    here["optimizer"]["state"] = optimizer.state_dict()
    if scheduler is not None:
        here["scheduler"]["state"] = scheduler.state_dict()
    return {"format": FORMAT, "optreg_version": optreg_version(), **here}


def _here(
    optimizer: Any, scheduler: Any, *, saved: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The record of the live objects, in a checkpoint's layout, without their states.

    With ``saved`` (a checkpoint), a scheduler is described only where the checkpoint
    holds a schedule to compare it with; otherwise it stands as ``{}`` (one was given).

    Raises:
        TypeError: an object optreg did not build (where its record is needed).
    """
    record = optimizer_record_of(optimizer)
    if record is None:
        raise _not_built(optimizer, "optimizer")
    out_opt = record.to_data()
    out_opt["groups"] = _groups(optimizer, record.names)
    out_sched: dict[str, Any] | None = None
    if scheduler is not None:
        if saved is not None and saved.get("scheduler") is None:
            out_sched = {}
        else:
            srecord = schedule_record_of(scheduler)
            if srecord is None:
                raise _not_built(scheduler, "scheduler")
            out_sched = srecord.to_data()
    return {"optimizer": out_opt, "scheduler": out_sched}


def _check_format(checkpoint: Any) -> None:
    if not isinstance(checkpoint, Mapping) or checkpoint.get("format") != FORMAT:
        found = checkpoint.get("format") if isinstance(checkpoint, Mapping) else None
        raise CheckpointMismatchError(
            f"not an optreg checkpoint record (format {found!r}, expected {FORMAT!r}): "
            "make it with optreg.state_dict(optimizer, scheduler)"
        )


def _same(a: Any, b: Any) -> bool:
    import torch

    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):  # a tensor lr, a number
        tensor, other = (a, b) if isinstance(a, torch.Tensor) else (b, a)
        return tensor.numel() == 1 and is_real(other) and float(tensor) == float(other)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def _differences(saved: Mapping[str, Any], here: Mapping[str, Any]) -> list[str]:
    out = []
    for key in sorted(set(saved) | set(here)):
        a, b = saved.get(key, "(default)"), here.get(key, "(default)")
        if not _same(a, b):
            out.append(f"{key}={a!r} in the checkpoint, {b!r} here")
    return out


def _group_differences(saved: list[dict[str, Any]], here: list[dict[str, Any]]) -> list[str]:
    if len(saved) != len(here):
        return [f"the checkpoint has {len(saved)} param groups, this optimizer {len(here)}"]
    out = []
    for i, (a, b) in enumerate(zip(saved, here, strict=True)):
        if len(a["params"]) != len(b["params"]):
            out.append(
                f"param group {i} holds {len(a['params'])} parameters in the checkpoint, "
                f"{len(b['params'])} here"
            )
            continue
        for j, (na, nb, sa, sb) in enumerate(
            zip(a["params"], b["params"], a["shapes"], b["shapes"], strict=True)
        ):
            label = nb or na or f"params[{j}]"
            if na is not None and nb is not None and unwrapped_name(na) != unwrapped_name(nb):
                out.append(f"param group {i}, parameter {j}: {na!r} in the checkpoint, {nb!r} here")
            elif list(sa) != list(sb):
                out.append(
                    f"param group {i}, {label!r}: shape {list(sa)} in the checkpoint, {list(sb)} here"
                )
    return out


def _effective(kind: str, name: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments as the name's factory effectively receives them (see
    `optreg._build.api.effective_arguments()`); as written when the factory refuses them."""
    try:
        return effective_arguments(kind, name, dict(given))
    except (TypeError, ValueError):
        return dict(given)


def _listed(lines: Sequence[str]) -> str:
    shown = lines[:_MAX_LISTED]
    more = len(lines) - len(shown)
    return "; ".join(shown) + (f"; and {more} more" if more else "")


def load_state_dict(
    checkpoint: Mapping[str, Any],
    optimizer: torch.optim.Optimizer,
    scheduler: Any = None,
    *,
    strict: bool = True,
) -> None:
    """Check a `state_dict()` record against the objects, then load it into them.

    Nothing is loaded unless every check passes. Checked, in order:

    * the optimizer's name (canonical, with its provider) and, when a schedule was
      saved, the schedule's name: another name is an error;
    * the param groups: their number, and per group the number, names (where both
      sides know them) and shapes of the parameters: any difference is an error;
    * the schedule's arguments (``num_warmup_steps``, ``num_training_steps``, its own
      keywords): the schedule would continue differently, so an error (a warning with
      ``strict=False``);
    * the optimizer's hyperparameters: a `CheckpointMismatchWarning` listing them,
      since the checkpoint's values are what continues (torch's ``load_state_dict``
      restores every group's options).

    Args:
        checkpoint: a `state_dict()` record (e.g. ``torch.load(path, weights_only=True)``).
        optimizer: built by [optreg.get_optimizer][].
        scheduler: built by [optreg.get_scheduler][]; required when the record holds
            a schedule, refused when it holds none.
        strict: schedule arguments that differ are an error (True) or a warning.

    Raises:
        CheckpointMismatchError: the record is not one, or does not fit (the message
            lists every difference found, up to six).
        TypeError: an object optreg did not build.
    """
    _check_format(checkpoint)
    found = differences(checkpoint, _here(optimizer, scheduler, saved=checkpoint))
    refusals = list(found.refusals)
    schedule = (checkpoint.get("scheduler") or {}).get("name")
    if strict and found.schedule:
        refusals.append(
            f"schedule {schedule!r} would continue differently: {_listed(found.schedule)}"
        )
    if refusals:
        raise CheckpointMismatchError(
            f"cannot load this checkpoint (nothing was loaded): {_listed(refusals)} {_NAMES_NOTE}"
        )
    if found.schedule:
        warnings.warn(
            f"schedule {schedule!r} continues with the arguments it was built with here, not "
            f"the checkpoint's: {_listed(found.schedule)}",
            CheckpointMismatchWarning,
            stacklevel=2,
        )
    if found.hyperparameters:
        warnings.warn(
            f"optimizer {checkpoint['optimizer']['name']!r} was built with other "
            "hyperparameters than the checkpoint's, and the checkpoint's continue: "
            f"{_listed(found.hyperparameters)}",
            CheckpointMismatchWarning,
            stacklevel=2,
        )
    optimizer.load_state_dict(checkpoint["optimizer"]["state"])
    if scheduler is not None and checkpoint.get("scheduler") is not None:
        scheduler.load_state_dict(checkpoint["scheduler"]["state"])


@dataclass(frozen=True)
class Differences:
    """What stands between a checkpoint record and the objects it would load into.

    Attributes:
        refusals: what forbids loading: another name, other param groups, a schedule
            saved but not given (or given but not saved).
        schedule: the schedule's arguments that differ (it would continue differently).
        hyperparameters: the optimizer's arguments and grouping that differ (the
            checkpoint's continue: torch restores every group's options).
    """

    refusals: tuple[str, ...]
    schedule: tuple[str, ...]
    hyperparameters: tuple[str, ...]


def differences(saved: Mapping[str, Any], here: Mapping[str, Any]) -> Differences:
    """Compare a checkpoint record with the record of the objects here (`_here()`);
    reads both, changes nothing."""
    saved_opt, here_opt = saved["optimizer"], here["optimizer"]
    refusals: list[str] = []
    if saved_opt["name"] != here_opt["name"]:
        refusals.append(
            f"the checkpoint is for optimizer {saved_opt['name']!r} ({saved_opt['provider']} "
            f"{saved_opt.get('provider_version')}), this one is {here_opt['name']!r}"
        )
    else:
        refusals += _group_differences(saved_opt["groups"], here_opt["groups"])
    saved_sched, here_sched = saved.get("scheduler"), here.get("scheduler")
    schedule: list[str] = []
    if saved_sched is None and here_sched is not None:
        refusals.append("the checkpoint holds no schedule, but a scheduler was given")
    elif saved_sched is not None and here_sched is None:
        refusals.append(
            f"the checkpoint holds the state of schedule {saved_sched['name']!r}: pass its "
            "scheduler too (optreg.from_state_dict rebuilds both)"
        )
    elif saved_sched is not None and here_sched is not None:
        if saved_sched["name"] != here_sched["name"]:
            refusals.append(
                f"the checkpoint is for schedule {saved_sched['name']!r}, this one is "
                f"{here_sched['name']!r}"
            )
        else:
            schedule = _differences(_schedule(saved_sched), _schedule(here_sched))
    hyper = _differences(_hyperparameters(saved_opt), _hyperparameters(here_opt))
    return Differences(tuple(refusals), tuple(schedule), tuple(hyper))


def _hyperparameters(data: Mapping[str, Any]) -> dict[str, Any]:
    """An optimizer record's arguments as its factory receives them, and its grouping."""
    record = OptimizerRecord.from_data(data)
    return {**_effective("optimizer", record.qualified_name, record.kwargs), **record.grouping}


def _schedule(data: Mapping[str, Any]) -> dict[str, Any]:
    """A schedule record's arguments as its factory receives them, step counts included."""
    record = ScheduleRecord.from_data(data)
    given = {
        **record.kwargs,
        "num_warmup_steps": record.num_warmup_steps,
        "num_training_steps": record.num_training_steps,
    }
    return _effective("scheduler", record.qualified_name, given)


def from_state_dict(checkpoint: Mapping[str, Any], params: Any) -> tuple[Any, Any]:
    """Rebuild the optimizer (and scheduler) a `state_dict()` record describes, and
    load it: no name or argument needs to be known.

    Args:
        checkpoint: a `state_dict()` record.
        params: the parameters, as [optreg.get_optimizer][] takes them (the model).

    Returns:
        ``(optimizer, scheduler)``; ``scheduler`` is None when the record holds none.

    Raises:
        CheckpointMismatchError: the record is not one, or ``params`` do not fit it.
        UnknownNameError: the record's optimizer or schedule is not installed here.
    """
    _check_format(checkpoint)
    optimizer, scheduler = Spec.from_record(checkpoint).build(params)
    load_state_dict(checkpoint, optimizer, scheduler)
    return optimizer, scheduler
