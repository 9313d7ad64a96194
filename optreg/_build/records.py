"""What optreg built, remembered for checkpoint records (see `optreg._checkpoint.state`).

[optreg.get_optimizer][] and [optreg.get_scheduler][] note here, weakly, the
entry, arguments and parameter names of each object they return.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

from optreg._core.catalog import RECORDS
from optreg._core.entry import Entry, optreg_version
from optreg._core.traits import Traits

__all__ = [
    "built_entry",
    "built_traits",
    "optimizer_arguments",
    "optimizer_record",
    "parameter_names",
    "remember_optimizer",
    "remember_scheduler",
    "snapshot",
]


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


def _provider(entry: Entry) -> dict[str, Any]:
    version = optreg_version() if entry.provider == "optreg" else entry.version
    return {"name": entry.name, "provider": entry.provider, "provider_version": version}


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
    """The arguments of a build as a record keeps them (`optimizer_arguments()` reads
    them back): the hyperparameters, ``no_decay`` / ``overrides``, and the rest of the
    grouping under ``grouping``; values, never references to what may change."""
    no_decay, overrides = grouping.get("no_decay"), grouping.get("overrides")
    if isinstance(no_decay, str):  # one pattern
        no_decay = [no_decay]
    return {
        "kwargs": snapshot(dict(kwargs)),
        "no_decay": None if no_decay is None else list(no_decay),
        "overrides": None if overrides is None else snapshot(dict(overrides)),
        "grouping": snapshot(
            {k: v for k, v in grouping.items() if k not in ("no_decay", "overrides")}
        ),
    }


def optimizer_arguments(saved: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(kwargs, grouping)`` of a record, any optreg version's (0.1 had no ``grouping``)."""
    grouping = {"no_decay": saved.get("no_decay"), "overrides": saved.get("overrides")}
    grouping.update(saved.get("grouping") or {})
    return dict(saved["kwargs"]), {k: v for k, v in grouping.items() if v is not None}


def remember_optimizer(
    optimizer: Any,
    entry: Entry,
    kwargs: Mapping[str, Any],
    grouping: Mapping[str, Any],
    names: dict[int, str],
) -> None:
    """Note how [optreg.get_optimizer][] built ``optimizer`` (for `state_dict()`)."""
    with contextlib.suppress(TypeError):  # an object with no weak reference: no record
        RECORDS["optimizer"][optimizer] = {
            **_provider(entry),
            "qualified_name": entry.qualified_name,
            **optimizer_record(kwargs, grouping),
            "names": names,
        }


def remember_scheduler(
    scheduler: Any,
    entry: Entry,
    num_warmup_steps: Any,
    num_training_steps: Any,
    kwargs: Mapping[str, Any],
) -> None:
    """Note how [optreg.get_scheduler][] built ``scheduler``."""
    with contextlib.suppress(TypeError):  # a plugin's object with no weak reference
        RECORDS["scheduler"][scheduler] = {
            **_provider(entry),
            "qualified_name": entry.qualified_name,
            "num_warmup_steps": num_warmup_steps,
            "num_training_steps": num_training_steps,
            "kwargs": snapshot(dict(kwargs)),
        }


def built_entry(optimizer: Any) -> Entry | None:
    """The entry of the name optreg built ``optimizer`` from; None for one it did not
    build (or whose name is no longer registered)."""
    try:
        record = RECORDS["optimizer"].get(optimizer)
    except TypeError:  # not weakly referable: never recorded
        return None
    if record is None:
        return None
    from optreg._core.registry import optimizers as registry

    try:
        return registry.resolve(record["qualified_name"])
    except Exception:  # unregistered since
        return None


def built_traits(optimizer: Any) -> Traits | None:
    """The traits of the name optreg built ``optimizer`` from (see `built_entry`)."""
    entry = built_entry(optimizer)
    return None if entry is None else entry.traits
