"""Gradient-norm clipping as an optimizer's name says: `clip_grad_norm_()`.

A name's factory may declare a [optreg.ClipPolicy][] in its contract: the param
groups clipping takes part in. ``muon_adamw``'s leaves its Muon side out (see the Muon
guide); a name without a policy is clipped as ``torch.nn.utils.clip_grad_norm_`` clips
every parameter of the optimizer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from optreg._core.contract import ClipPolicy, contract_of

if TYPE_CHECKING:
    import torch

__all__ = ["clip_grad_norm_", "clip_policy", "clipped_parameters"]


def clip_policy(optimizer: Any) -> ClipPolicy | None:
    """The clip policy of ``optimizer``'s name: its class's contract (a class factory,
    as ``muon_adamw``'s), else the contract of the name optreg built it from."""
    from optreg._policies.modes import unwrap_optimizer

    optimizer = unwrap_optimizer(optimizer)
    declared = contract_of(type(optimizer)).clip
    if declared is not None:
        return declared
    from optreg._build.records import built_entry
    from optreg._core import loading

    entry = built_entry(optimizer)
    if entry is None:
        return None
    try:
        return loading.contract(entry).clip
    except Exception:  # its factory no longer loads: no policy
        return None


def clipped_parameters(optimizer: Any) -> list[torch.Tensor]:
    """The parameters `clip_grad_norm_()` takes into the norm and scales, in the
    optimizer's group order."""
    from optreg._policies.modes import unwrap_optimizer

    optimizer = unwrap_optimizer(optimizer)
    policy = clip_policy(optimizer)
    return [
        p
        for group in optimizer.param_groups
        if policy is None or policy.clips(group)
        for p in group["params"]
    ]


def clip_grad_norm_(
    optimizer: Any,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> torch.Tensor:
    """Clip the gradients ``optimizer`` steps with, as its name's clip policy says.

    ``torch.nn.utils.clip_grad_norm_`` over the parameters of the param groups the
    policy clips (every group without a policy: then it equals torch's call over the
    optimizer's parameters bit for bit). ``muon_adamw`` leaves its Muon side out::

        loss.backward()
        optreg.clip_grad_norm_(optimizer, 1.0)
        optimizer.step()

    Args:
        optimizer: the optimizer about to step.
        max_norm: the largest total norm, as torch's.
        norm_type: the norm's order, as torch's.
        error_if_nonfinite: raise on a non-finite norm, as torch's.
        foreach: torch's kernel choice.

    Returns:
        The total norm of the clipped groups' gradients (before clipping), as torch's.

    Raises:
        RuntimeError: what torch raises (a non-finite norm with ``error_if_nonfinite``).
    """
    import torch

    return torch.nn.utils.clip_grad_norm_(
        clipped_parameters(optimizer),
        max_norm,
        norm_type=norm_type,
        error_if_nonfinite=error_if_nonfinite,
        foreach=foreach,
    )
