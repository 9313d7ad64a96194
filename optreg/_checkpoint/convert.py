"""Optimizer state from one layout of an algorithm to another: bitsandbytes 8-bit / 32-bit
and torch's fp32, for Adam(W) and Lion.

Users convert by hand today (bitsandbytes #782, #1382): to resume an 8-bit run in fp32,
to debug one, to move a run to a machine without bitsandbytes. `convert_state_dict()`
does it from ``optimizer.state_dict()`` to a state dict the other name's optimizer loads.

Approximate where 8-bit is involved: 8-bit state is dequantised (bitsandbytes' blockwise
dynamic quantisation, 256 values per block) and fp32 state is quantised the way the 8-bit
optimizers store it. The README quotes the measured error.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from optreg._core.registry import optimizers

__all__ = ["conversions", "convert_state_dict"]

_BNB_WRAPPER = "__bnb_optimizer_quant_state__"  # where bitsandbytes' state_dict puts it
_BLOCKSIZE = 256  # bitsandbytes' 8-bit optimizers quantise their state in blocks of 256
_MIN_8BIT_SIZE = 4096  # and keep the state of smaller parameters in fp32 (their default)

#: bitsandbytes class families whose state converts, by algorithm; the names and their
#: bit widths come from the catalogue (`optreg.builtin.BNB_OPTIMIZERS`).
_FAMILIES = {"Adam": "adam", "AdamW": "adam", "Lion": "lion"}
#: torch's names of each algorithm (fp32 state as ``exp_avg`` / ``exp_avg_sq``).
_TORCH_NAMES = {"adam": ("adam", "adamw"), "lion": ()}


@functools.cache
def conversions() -> Mapping[str, Mapping[str, int | str]]:
    """algorithm -> {canonical name: layout}; a layout is 8 / 32 (bitsandbytes) or
    ``"torch"``. Derived from the catalogue: a bitsandbytes name converts when its class
    is of an Adam or Lion family (``PagedAdamW8bit``: AdamW, 8 bit)."""
    from optreg.builtin import BNB_OPTIMIZERS

    out: dict[str, dict[str, int | str]] = {
        algorithm: dict.fromkeys(names, "torch") for algorithm, names in _TORCH_NAMES.items()
    }
    for b in BNB_OPTIMIZERS:
        family = re.sub(r"^Paged|(?:8|32)bit$", "", b.class_name)
        if family in _FAMILIES:
            out[_FAMILIES[family]][b.name] = b.bits
    return MappingProxyType({k: MappingProxyType(v) for k, v in out.items()})


def __getattr__(name: str) -> Any:
    if name == "CONVERSIONS":  # derived on first use: the catalogue imports pluggy
        return conversions()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_MOMENTS = {"adam": 2, "lion": 1}
_TORCH_KEYS = ("exp_avg", "exp_avg_sq")


def _layout(name: str, role: str) -> tuple[str, str, int | str]:
    canonical = optimizers.resolve(name).name
    for algorithm, names in conversions().items():
        if canonical in names:
            return canonical, algorithm, names[canonical]
    known = ", ".join(f"{a}: {' '.join(sorted(n))}" for a, n in conversions().items())
    raise ValueError(
        f"cannot convert the state of {role} optimizer {canonical!r}: conversions exist "
        f"between the names of one algorithm ({known})"
    )


def convert_state_dict(state_dict: Mapping[str, Any], source: str, target: Any) -> dict[str, Any]:
    """``source``'s ``optimizer.state_dict()`` in the layout of ``target``'s optimizer.

    ``adamw_8bit`` <-> ``adamw`` (and every Adam name of `CONVERSIONS`),
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
        MissingDependencyError: a bitsandbytes layout without bitsandbytes installed.
    """
    target_optimizer = None if isinstance(target, str) else target
    target_name = target if target_optimizer is None else _built_name(target_optimizer)
    src, algorithm, src_layout = _layout(source, "source")
    dst, dst_algorithm, dst_layout = _layout(target_name, "target")
    if algorithm != dst_algorithm:
        raise ValueError(
            f"cannot convert {src!r} ({algorithm}) state to {dst!r} ({dst_algorithm}): "
            "only between the names of one algorithm"
        )
    for name, layout in ((src, src_layout), (dst, dst_layout)):
        if layout != "torch":  # a missing bitsandbytes is the name's own error
            optimizers.load(optimizers.resolve(name))
    defaults = dict(target_optimizer.defaults) if target_optimizer is not None else _defaults(dst)
    groups = [_group(g, defaults) for g in state_dict["param_groups"]]
    where = _positions(state_dict, target_optimizer)
    state = {}
    for pid, st in state_dict["state"].items():
        moments, step = _read(src, src_layout, algorithm, pid, st)
        eight_bit = dst_layout == 8 and _wants_8bit(target_optimizer, where.get(pid), moments[0])
        state[pid] = _write(dst_layout, moments, step, eight_bit=eight_bit)
    return {"state": state, "param_groups": groups}


def _built_name(optimizer: Any) -> str:
    from optreg._core.catalog import RECORDS

    record = RECORDS["optimizer"].get(optimizer) if hasattr(optimizer, "param_groups") else None
    if record is None:
        raise TypeError(
            "convert_state_dict: `target` must be an optimizer name or an optimizer built by "
            "optreg.get_optimizer (whose name is known), got "
            f"{type(optimizer).__name__}: {optimizer!r:.80}"
        )
    return str(record["name"])


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


def _wants_8bit(optimizer: Any, position: tuple[int, int] | None, moment: Any) -> bool:
    """Whether the target keeps this parameter's state in 8 bit, as bitsandbytes decides
    at its first step (``Optimizer8bit.init_state``).

    Raises:
        ValueError: the parameter's size differs from the state's.
    """
    if optimizer is None or position is None:
        return bool(moment.numel() >= _MIN_8BIT_SIZE)
    gi, pi = position
    group = optimizer.param_groups[gi]
    param = group["params"][pi]
    if param.numel() != moment.numel():
        raise ValueError(
            f"convert_state_dict: parameter {pi} of param group {gi} has {param.numel()} "
            f"values in the target optimizer, {moment.numel()} in the state"
        )
    config = optimizer.get_config(gi, pi, group)
    return bool(config["optim_bits"] == 8 and param.numel() >= config["min_8bit_size"])


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


def _read(
    name: str, layout: int | str, algorithm: str, pid: Any, state: Mapping[str, Any]
) -> tuple[list[Any], int]:
    """``([moment, ...] in fp32, step)`` of one parameter's state.

    Raises:
        ValueError: the state lacks what ``layout`` holds.
    """
    import torch

    count = _MOMENTS[algorithm]
    if layout == "torch":
        keys = _TORCH_KEYS[:count]
        missing = [k for k in ("step", *keys) if k not in state]
        if missing:
            raise ValueError(
                f"parameter {pid} of the {name!r} state lacks {', '.join(missing)} "
                f"(keys: {sorted(state)}): not a {name} state"
            )
        return [state[k].float() for k in keys], int(state["step"])
    flat = {k: v for k, v in state.items() if k != _BNB_WRAPPER}
    flat.update(state.get(_BNB_WRAPPER, {}))
    moments = []
    for i in range(1, count + 1):
        value = flat.get(f"state{i}")
        if not isinstance(value, torch.Tensor) or "step" not in flat:
            raise ValueError(
                f"parameter {pid} of the {name!r} state lacks state{i} / step "
                f"(keys: {sorted(flat)}): not a bitsandbytes {name} state"
            )
        if value.dtype == torch.uint8:
            functional = _bnb_functional()
            value = functional.dequantize_blockwise(
                value, absmax=flat[f"absmax{i}"], code=flat[f"qmap{i}"], blocksize=_BLOCKSIZE
            )
        moments.append(value.float())
    return moments, int(flat["step"])


def _write(layout: int | str, moments: list[Any], step: int, *, eight_bit: bool) -> dict[str, Any]:
    import torch

    if layout == "torch":
        out: dict[str, Any] = {"step": torch.tensor(float(step), dtype=torch.float32)}
        out.update(zip(_TORCH_KEYS, (m.clone() for m in moments), strict=False))
        return out
    quant: dict[str, Any] = {}
    for i, moment in enumerate(moments, start=1):
        if eight_bit:
            functional = _bnb_functional()
            code = functional.create_dynamic_map(signed=i == 1)  # the second moment is >= 0
            q, qstate = functional.quantize_blockwise(
                moment.contiguous(), code=code, blocksize=_BLOCKSIZE
            )
            quant.update({f"state{i}": q, f"qmap{i}": code, f"absmax{i}": qstate.absmax})
        else:
            quant[f"state{i}"] = moment.clone()
    return {"step": step, _BNB_WRAPPER: quant}


def _bnb_functional() -> Any:
    from optreg._core.loading import import_heavy

    return import_heavy("bitsandbytes.functional")
