"""bitsandbytes' optimizer state layouts, for [optreg.convert_state_dict][].

bitsandbytes keeps an Adam(W) or Lion state as ``state1`` (and ``state2``) with a
``step``, nested under ``__bnb_optimizer_quant_state__`` by ``state_dict()``. An 8-bit
name keeps each parameter of at least ``min_8bit_size`` values in uint8, quantised in
blocks of 256 with bitsandbytes' dynamic maps (``qmap1``, ``absmax1``...); smaller
ones and the 32-bit names keep fp32. `layout()` gives a name its
[optreg.StateLayout][], which its factory's contract declares.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from optreg._core.contract import StateLayout
from optreg._core.loading import import_heavy

__all__ = ["layout"]

_WRAPPER = "__bnb_optimizer_quant_state__"  # where bitsandbytes' state_dict puts it
_BLOCKSIZE = 256  # bitsandbytes' 8-bit optimizers quantise their state in blocks of 256
_MIN_8BIT_SIZE = 4096  # and keep the state of smaller parameters in fp32 (their default)

#: bitsandbytes class families whose state converts, and their algorithm
_FAMILIES = {"Adam": "adam", "AdamW": "adam", "Lion": "lion"}
_MOMENTS = {"adam": 2, "lion": 1}


def layout(class_name: str, bits: int) -> StateLayout | None:
    """The state layout of the bitsandbytes class ``class_name`` at ``bits`` (8 or 32),
    or None where optreg converts none (AdEMAMix, LAMB, SGD...).

    ``PagedAdamW8bit`` is of the AdamW family: Adam's two moments, 8 bit.
    """
    family = re.sub(r"^Paged|(?:8|32)bit$", "", class_name)
    algorithm = _FAMILIES.get(family)
    if algorithm is None:
        return None
    count = _MOMENTS[algorithm]

    def read(state: Mapping[str, Any], what: str) -> tuple[list[Any], int]:
        return _read(state, what, count)

    def write(
        moments: list[Any], step: int, optimizer: Any, position: tuple[int, int] | None
    ) -> dict[str, Any]:
        eight_bit = bits == 8 and _wants_8bit(optimizer, position, moments[0])
        return _write(moments, step, eight_bit=eight_bit)

    return StateLayout(algorithm, f"{bits}-bit", read, write)


def _read(state: Mapping[str, Any], what: str, count: int) -> tuple[list[Any], int]:
    """``([moment, ...] in fp32, step)`` of one parameter's bitsandbytes state.

    Raises:
        ValueError: the state lacks ``state1`` ... or ``step``.
    """
    flat = {k: v for k, v in state.items() if k != _WRAPPER}
    flat.update(state.get(_WRAPPER, {}))
    moments = []
    for i in range(1, count + 1):
        value = flat.get(f"state{i}")
        if not isinstance(value, torch.Tensor) or "step" not in flat:
            raise ValueError(
                f"{what} lacks state{i} / step (keys: {sorted(flat)}): not a bitsandbytes "
                "state of this name"
            )
        if value.dtype == torch.uint8:
            value = _functional().dequantize_blockwise(
                value, absmax=flat[f"absmax{i}"], code=flat[f"qmap{i}"], blocksize=_BLOCKSIZE
            )
        moments.append(value.float())
    return moments, int(flat["step"])


def _write(moments: list[Any], step: int, *, eight_bit: bool) -> dict[str, Any]:
    quant: dict[str, Any] = {}
    for i, moment in enumerate(moments, start=1):
        if eight_bit:
            functional = _functional()
            code = functional.create_dynamic_map(signed=i == 1)  # the second moment is >= 0
            q, qstate = functional.quantize_blockwise(
                moment.contiguous(), code=code, blocksize=_BLOCKSIZE
            )
            quant.update({f"state{i}": q, f"qmap{i}": code, f"absmax{i}": qstate.absmax})
        else:
            quant[f"state{i}"] = moment.clone()
    return {"step": step, _WRAPPER: quant}


def _wants_8bit(optimizer: Any, position: tuple[int, int] | None, moment: Any) -> bool:
    """Whether the target keeps this parameter's state in 8 bit, as bitsandbytes decides
    at its first step (``Optimizer8bit.init_state``): by the name's defaults when the
    target is a name, else by the parameter's own options.

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


def _functional() -> Any:
    return import_heavy("bitsandbytes.functional")
