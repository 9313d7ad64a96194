"""Optimizer state from one layout of an algorithm to another: bitsandbytes 8-bit / 32-bit
and torch's fp32, for Adam(W) and Lion.

Users convert by hand today (bitsandbytes #782, #1382): to resume an 8-bit run in fp32,
to debug one, to move a run to a machine without bitsandbytes. `convert_state_dict()`
does it from ``optimizer.state_dict()`` to a state dict the other name's optimizer loads.

What a name stores is its factory's to say: the contract's
[optreg.StateLayout][] reads one parameter's state into fp32 moments and writes them back
(the torch and bitsandbytes builtins declare theirs; a plugin may declare its own). This
module only pairs two layouts of one algorithm and carries the param groups over.
Approximate where 8-bit is involved; the README quotes the measured error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optreg._core.contract import StateLayout
from optreg._core.errors import OptregError
from optreg._core.loading import contract
from optreg._core.registry import optimizers

__all__ = ["conversions", "convert_state_dict"]


def conversions() -> dict[str, dict[str, str]]:
    """algorithm -> {canonical name: layout label} over the names whose factories declare
    a [optreg.StateLayout][] (``{"adam": {"adamw": "torch", "adamw_8bit": "8-bit", ...}}``).

    Loads every available optimizer name to read its contract: call it to list, not on a
    hot path. A name that fails to load is left out (its own error says why).
    """
    out: dict[str, dict[str, str]] = {}
    for entry in optimizers.entries():
        if not optimizers.status(entry)[0]:
            continue
        try:
            layout = contract(entry).state
        except OptregError:  # a broken plugin's name is not listed, nothing more
            continue
        if layout is not None:
            out.setdefault(layout.algorithm, {})[entry.name] = layout.label
    return out


def _layout(name: str, role: str) -> tuple[str, StateLayout]:
    entry = optimizers.resolve(name)
    layout = contract(entry).state
    if layout is None:
        known = ", ".join(f"{a}: {' '.join(sorted(n))}" for a, n in conversions().items())
        raise ValueError(
            f"cannot convert the state of {role} optimizer {entry.name!r}: conversions exist "
            f"between the names of one algorithm ({known}), whose factories declare a "
            "state layout (optreg.FactoryContract(state=...))"
        )
    return entry.name, layout


def convert_state_dict(state_dict: Mapping[str, Any], source: str, target: Any) -> dict[str, Any]:
    """``source``'s ``optimizer.state_dict()`` in the layout of ``target``'s optimizer.

    ``adamw_8bit`` <-> ``adamw`` (and every Adam name `conversions()` lists),
    ``lion_8bit`` <-> ``lion_32bit`` (and the paged ones). Each parameter's moments are
    dequantised to fp32 or quantised to 8 bit (bitsandbytes' blockwise dynamic maps, as its
    8-bit optimizers store them), the step count carried over. Each param group keeps the
    source's values of the options the target has (``lr``, ``betas``, ``eps``,
    ``weight_decay``, a schedule's ``initial_lr``) and takes the target's defaults for the
    others.

    Which parameters get 8-bit state is the target's choice, as bitsandbytes makes it:
    given the optimizer that will load the result, each parameter's own options count
    (``overrides={pattern: {"optim_bits": 32}}``, ``min_8bit_size``, group options);
    given a name, its defaults do (8 bit from 4096 values up).

    Args:
        state_dict: ``optimizer.state_dict()`` of an optimizer built as ``source``.
        source: the name it was built by (an alias is fine).
        target: the optimizer that will load the result (built by
            [optreg.get_optimizer][], over the same parameters), or its name.

    Returns:
        A state dict for ``target``'s ``load_state_dict``.

    Raises:
        ValueError: a pair of names of different algorithms, or a name with no
            conversion; a state that is not of ``source``'s layout, or parameters that
            are not the target optimizer's.
        TypeError: a target optimizer that optreg did not build (its name is unknown).
        MissingDependencyError: a bitsandbytes name without bitsandbytes installed.
    """
    target_optimizer = None if isinstance(target, str) else target
    target_name = target if target_optimizer is None else _built_name(target_optimizer)
    src, src_layout = _layout(source, "source")
    dst, dst_layout = _layout(target_name, "target")
    if src_layout.algorithm != dst_layout.algorithm:
        raise ValueError(
            f"cannot convert {src!r} ({src_layout.algorithm}) state to {dst!r} "
            f"({dst_layout.algorithm}): only between the names of one algorithm"
        )
    defaults = dict(target_optimizer.defaults) if target_optimizer is not None else _defaults(dst)
    groups = [_group(g, defaults) for g in state_dict["param_groups"]]
    where = _positions(state_dict, target_optimizer)
    state = {}
    for pid, st in state_dict["state"].items():
        moments, step = src_layout.read(st, f"parameter {pid} of the {src!r} state")
        state[pid] = dst_layout.write(moments, step, target_optimizer, where.get(pid))
    return {"state": state, "param_groups": groups}


def _built_name(optimizer: Any) -> str:
    from optreg._build.records import optimizer_record_of

    record = optimizer_record_of(optimizer)
    if record is None:
        raise TypeError(
            "convert_state_dict: `target` must be an optimizer name or an optimizer built by "
            "optreg.get_optimizer (whose name is known), got "
            f"{type(optimizer).__name__}: {optimizer!r:.80}"
        )
    return record.name


def _positions(state_dict: Mapping[str, Any], optimizer: Any) -> dict[Any, tuple[int, int]]:
    """``state id -> (group index, index in group)`` of the target's parameters.

    Raises:
        ValueError: the state's param groups do not match the target optimizer's.
    """
    if optimizer is None:
        return {}
    saved = [list(g["params"]) for g in state_dict["param_groups"]]
    here = [len(g["params"]) for g in optimizer.param_groups]
    if [len(g) for g in saved] != here:
        raise ValueError(
            f"convert_state_dict: the state has param groups of {[len(g) for g in saved]} "
            f"parameters, the target optimizer {here}: build it over the same parameters"
        )
    return {pid: (gi, pi) for gi, group in enumerate(saved) for pi, pid in enumerate(group)}


def _defaults(name: str) -> dict[str, Any]:
    """The target's group options, from one built on a throwaway parameter (on the meta
    device: no memory, and a paged name's once-per-process CPU warning is kept for the
    user's own optimizer)."""
    import torch

    from optreg._build.api import get_optimizer

    return dict(get_optimizer(name, [torch.nn.Parameter(torch.zeros(1, device="meta"))]).defaults)


def _group(group: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(defaults)
    for key, value in group.items():
        if key == "betas" and "betas" in defaults:
            given = tuple(value)
            out["betas"] = given[: len(defaults["betas"])] + tuple(defaults["betas"])[len(given) :]
        elif key in defaults or key in ("params", "initial_lr"):
            out[key] = value
    return out
