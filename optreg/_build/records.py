"""What optreg built, as typed records: the one home of the checkpoint record's layout.

[optreg.get_optimizer][] and [optreg.get_scheduler][] note here, weakly, an
`OptimizerRecord` / `ScheduleRecord` of each object they return: its entry, arguments,
grouping and parameter names. A record turns into the plain data a checkpoint keeps
(`OptimizerRecord.to_data()`) and back from any optreg version's
(`OptimizerRecord.from_data()`, through the one migration, `migrate()`);
`optreg._checkpoint.state` compares and loads, and `optreg._build.spec` rebuilds, from
these types alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from optreg._core.catalog import RECORDS
from optreg._core.entry import Entry, optreg_version
from optreg._core.traits import Traits

__all__ = [
    "OptimizerRecord",
    "ScheduleRecord",
    "built_entry",
    "built_traits",
    "migrate",
    "optimizer_record",
    "optimizer_record_of",
    "parameter_names",
    "remember_optimizer",
    "remember_scheduler",
    "schedule_record",
    "schedule_record_of",
    "snapshot",
]

#: The grouping keys a record keeps beside ``kwargs`` (0.1 kept only these two); the
#: others ride under ``"grouping"``.
_TOP_GROUPING = ("no_decay", "overrides")


@dataclass(frozen=True)
class OptimizerRecord:
    """How [optreg.get_optimizer][] built an optimizer.

    Attributes:
        name: the canonical name.
        qualified_name: ``provider:name``, what a checkpoint names.
        provider: the distribution that provides the name.
        provider_version: its version (None where a record did not say).
        kwargs: the hyperparameters given, as values.
        grouping: every grouping keyword given (``no_decay``, ``overrides``, ``rules``,
            ``layer_decay``, ``layer_pattern``), as values, in one mapping.
        names: ``id(tensor) -> name`` of the parameters given (live records only).
    """

    name: str
    qualified_name: str
    provider: str
    provider_version: str | None
    kwargs: Mapping[str, Any]
    grouping: Mapping[str, Any]
    names: Mapping[int, str] = field(default_factory=dict)

    def to_data(self) -> dict[str, Any]:
        """The plain data a checkpoint keeps (``optreg.checkpoint/1``): ``name`` (the
        qualified one), ``provider``, ``provider_version``, ``kwargs``, ``no_decay``,
        ``overrides`` and ``grouping`` (the other grouping keywords)."""
        return {**_provided_data(self), **optimizer_record(self.kwargs, self.grouping)}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> OptimizerRecord:
        """The record a checkpoint's ``"optimizer"`` holds, any optreg version's."""
        data = migrate(data)
        return cls(**_provided(data), kwargs=dict(data["kwargs"]), grouping=dict(data["grouping"]))


@dataclass(frozen=True)
class ScheduleRecord:
    """How [optreg.get_scheduler][] built a scheduler (attributes as `OptimizerRecord`'s,
    with the step counts as given)."""

    name: str
    qualified_name: str
    provider: str
    provider_version: str | None
    num_warmup_steps: Any
    num_training_steps: Any
    kwargs: Mapping[str, Any]

    def to_data(self) -> dict[str, Any]:
        """The plain data a checkpoint keeps for the schedule."""
        steps = schedule_record(self.num_warmup_steps, self.num_training_steps, self.kwargs)
        return {**_provided_data(self), **steps}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> ScheduleRecord:
        """The record a checkpoint's ``"scheduler"`` holds."""
        return cls(
            **_provided(data),
            num_warmup_steps=data["num_warmup_steps"],
            num_training_steps=data["num_training_steps"],
            kwargs=dict(data["kwargs"]),
        )


def _provided(data: Mapping[str, Any]) -> dict[str, Any]:
    """A record's name and provider fields, from its plain data (a qualified name)."""
    name = str(data["name"])
    return {
        "name": name.rpartition(":")[2],
        "qualified_name": name,
        "provider": str(data.get("provider", "")),
        "provider_version": data.get("provider_version"),
    }


def _provided_data(record: OptimizerRecord | ScheduleRecord) -> dict[str, Any]:
    return {
        "name": record.qualified_name,
        "provider": record.provider,
        "provider_version": record.provider_version,
    }


def migrate(data: Mapping[str, Any]) -> dict[str, Any]:
    """An optimizer record of any optreg version in today's shape, with every grouping
    keyword in one ``"grouping"`` mapping (None values dropped): 0.1 kept only
    ``no_decay`` / ``overrides``, 0.2 on keep the rest under ``"grouping"``."""
    grouping = {k: data.get(k) for k in _TOP_GROUPING}
    grouping.update(data.get("grouping") or {})
    out = {k: v for k, v in data.items() if k not in _TOP_GROUPING}
    out["grouping"] = {k: v for k, v in grouping.items() if v is not None}
    return out


def parameter_names(params: Any) -> dict[int, str]:
    """``id(tensor) -> name`` for what [optreg.get_optimizer][] was given, where it
    says names (an ``nn.Module`` or ``(name, tensor)`` pairs); empty otherwise."""
    from torch import nn

    from optreg.params._kinds import is_named_pairs
    from optreg.params._kinds import named_parameters as walk

    if isinstance(params, nn.Module):
        return {id(p): n for n, p in walk(params)}
    if is_named_pairs(params):
        return {id(p): n for n, p in params}
    return {}


def _version(entry: Entry) -> str | None:
    return optreg_version() if entry.provider == "optreg" else entry.version


def snapshot(value: Any) -> Any:
    """``value`` as it is now: tensors copied (a schedule fills a tensor lr in place),
    mappings and sequences copied all the way down; other values as they are."""
    from torch import Tensor

    if isinstance(value, Tensor):
        return value.detach().clone()
    if isinstance(value, Mapping):
        return {k: snapshot(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(snapshot(v) for v in value)
    return value


def optimizer_record(kwargs: Mapping[str, Any], grouping: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments of a build as a checkpoint keeps them: the hyperparameters,
    ``no_decay`` / ``overrides``, and the rest of the grouping under ``grouping``; values,
    never references to what may change (`migrate()` reads them back into one mapping)."""
    no_decay, overrides = grouping.get("no_decay"), grouping.get("overrides")
    if isinstance(no_decay, str):  # one pattern
        no_decay = [no_decay]
    return {
        "kwargs": snapshot(dict(kwargs)),
        "no_decay": None if no_decay is None else list(no_decay),
        "overrides": None if overrides is None else snapshot(dict(overrides)),
        "grouping": snapshot({k: v for k, v in grouping.items() if k not in _TOP_GROUPING}),
    }


def schedule_record(warmup: Any, steps: Any, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """A schedule's arguments as a checkpoint keeps them (values, as `optimizer_record`)."""
    return {
        "num_warmup_steps": warmup,
        "num_training_steps": steps,
        "kwargs": snapshot(dict(kwargs)),
    }


def remember_optimizer(
    optimizer: Any,
    entry: Entry,
    kwargs: Mapping[str, Any],
    grouping: Mapping[str, Any],
    names: dict[int, str],
) -> None:
    """Note how [optreg.get_optimizer][] built ``optimizer`` (for `state_dict()`)."""
    record = OptimizerRecord(
        name=entry.name,
        qualified_name=entry.qualified_name,
        provider=entry.provider,
        provider_version=_version(entry),
        kwargs=snapshot(dict(kwargs)),
        grouping=snapshot({k: v for k, v in grouping.items() if v is not None}),
        names=names,
    )
    with contextlib.suppress(TypeError):  # an object with no weak reference: no record
        RECORDS["optimizer"][optimizer] = record


def remember_scheduler(
    scheduler: Any,
    entry: Entry,
    num_warmup_steps: Any,
    num_training_steps: Any,
    kwargs: Mapping[str, Any],
) -> None:
    """Note how [optreg.get_scheduler][] built ``scheduler``."""
    record = ScheduleRecord(
        name=entry.name,
        qualified_name=entry.qualified_name,
        provider=entry.provider,
        provider_version=_version(entry),
        num_warmup_steps=num_warmup_steps,
        num_training_steps=num_training_steps,
        kwargs=snapshot(dict(kwargs)),
    )
    with contextlib.suppress(TypeError):  # a plugin's object with no weak reference
        RECORDS["scheduler"][scheduler] = record


def optimizer_record_of(optimizer: Any) -> OptimizerRecord | None:
    """The record of an optimizer optreg built; None for any other object."""
    try:
        found = RECORDS["optimizer"].get(optimizer)
    except TypeError:  # not weakly referable: never recorded
        return None
    return found if isinstance(found, OptimizerRecord) else None


def schedule_record_of(scheduler: Any) -> ScheduleRecord | None:
    """The record of a scheduler optreg built; None for any other object."""
    try:
        found = RECORDS["scheduler"].get(scheduler)
    except TypeError:
        return None
    return found if isinstance(found, ScheduleRecord) else None


def built_entry(optimizer: Any) -> Entry | None:
    """The entry of the name optreg built ``optimizer`` from; None for one it did not
    build (or whose name is no longer registered)."""
    record = optimizer_record_of(optimizer)
    if record is None:
        return None
    from optreg._core.registry import optimizers as registry

    try:
        return registry.resolve(record.qualified_name)
    except Exception:  # unregistered since
        return None


def built_traits(optimizer: Any) -> Traits | None:
    """The traits of the name optreg built ``optimizer`` from (see `built_entry`)."""
    entry = built_entry(optimizer)
    return None if entry is None else entry.traits
