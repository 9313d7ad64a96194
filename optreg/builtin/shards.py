"""Element-wise optimizers step FSDP2 shards as plain local tensors.

Every operation of an element-wise update (Adam, AdamW: each value of a parameter is
updated from the same values of its gradient and state) gives on a row shard what it
gives on the whole tensor, so under FSDP2 each rank may step its own rows directly.
Stepped as DTensors, each of the update's many small operations pays DTensor's dispatch;
`step_shards_locally()` hooks an optimizer so that, while ``step()`` runs, its param
groups hold the parameters' local tensors (with their gradients' local tensors) and its
state the state's local tensors. The same kernel runs on the same values, so the numbers
equal the DTensor path's bit for bit; the state stays DTensor between steps (state made
at the first step is wrapped with the parameter's mesh and placements), so
``get_state_dict`` / DCP resharding see what they always saw.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, TypeVar

import torch
from torch import Tensor

__all__ = ["is_dtensor", "step_shards_locally"]

_O = TypeVar("_O", bound=torch.optim.Optimizer)
_SWAPPED = "_optreg_shards_swapped"


def is_dtensor(t: object) -> bool:
    """Whether ``t`` is a ``torch.distributed.tensor.DTensor`` (imported only if used)."""
    return type(t).__name__ == "DTensor" and hasattr(t, "device_mesh")


def _dtensor_type() -> Any:
    from torch.distributed.tensor import DTensor

    return DTensor


def step_shards_locally(optimizer: _O) -> _O:
    """Hook ``optimizer`` (element-wise) to step DTensor parameters' local tensors.

    Args:
        optimizer: a ``torch.optim.Optimizer`` whose update is element-wise.

    Returns:
        ``optimizer``, with a step pre-hook and post-hook (and a ``state_dict`` pre-hook
        that puts things back if a step raised in between).
    """
    optimizer.register_step_pre_hook(_to_local)
    optimizer.register_step_post_hook(_restore)
    optimizer.register_state_dict_pre_hook(lambda opt: _restore(opt, (), {}))
    return optimizer


def _to_local(optimizer: Any, args: Any, kwargs: Any) -> None:
    """Step pre-hook: the param groups and state as local tensors, for this step."""
    _restore(optimizer, args, kwargs)  # a step that raised left them swapped
    groups = optimizer.param_groups
    if not any(is_dtensor(p) for g in groups for p in g["params"]):
        return
    dtensor = _dtensor_type()
    state = optimizer.state
    local_state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
    pairs: list[tuple[Tensor, Tensor]] = []
    with torch.no_grad():
        for group in groups:
            params = []
            for p in group["params"]:
                local = p._local_tensor if isinstance(p, dtensor) else p
                if local is not p:
                    local.grad = None if p.grad is None else p.grad._local_tensor
                if p in state:
                    local_state[local] = {
                        k: v._local_tensor if isinstance(v, dtensor) else v
                        for k, v in state[p].items()
                    }
                params.append(local)
                pairs.append((p, local))
            group["params"] = params
    optimizer.__dict__[_SWAPPED] = (state, pairs, [len(g["params"]) for g in groups])
    optimizer.state = local_state


def _restore(optimizer: Any, args: Any, kwargs: Any) -> None:
    """Step post-hook: the DTensor parameters back, and the state the step made or
    replaced wrapped as the parameter's DTensor."""
    swapped = optimizer.__dict__.pop(_SWAPPED, None)
    if swapped is None:
        return
    dtensor = _dtensor_type()
    state, pairs, sizes = swapped
    local_state = optimizer.state
    done = 0
    for group, size in zip(optimizer.param_groups, sizes, strict=True):
        group["params"] = [p for p, _ in pairs[done : done + size]]
        done += size
    for p, local in pairs:
        if local is not p:
            local.grad = None
        if local not in local_state:
            continue
        saved = state[p]
        for key, value in local_state[local].items():
            held = saved.get(key)
            if held is value or (isinstance(held, dtensor) and held._local_tensor is value):
                continue  # updated in place
            if isinstance(p, dtensor) and isinstance(value, Tensor) and value.shape == local.shape:
                value = dtensor.from_local(
                    value,
                    p.device_mesh,
                    p.placements,
                    run_check=False,
                    shape=p.shape,
                    stride=p.stride(),
                )
            saved[key] = value
    optimizer.state = state
