"""Adafactor's arithmetic, shared by the optimizer and its schedule proxy: the relative
step size, ``lr_t``, and the two in-place updates (factored for parameters with two or
more dimensions, plain ``torch._foreach_*`` for the rest). Formulas: transformers'
``Adafactor`` (``/shared/REFERENCE.md``); see :mod:`optreg.builtin.adafactor` for how the
implementation saves passes.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

__all__ = ["adafactor_lr", "relative_step_size", "update_factored", "update_plain"]

_Tensors = list[Tensor] | tuple[Tensor, ...]


def relative_step_size(group: dict[str, Any], step: int) -> float:
    """``rho_t``: the relative step size at ``step``, or the group's ``lr`` without one."""
    if not group["relative_step"]:
        return float(group["lr"])
    min_step = 1e-6 * step if group["warmup_init"] else 1e-2
    return min(min_step, 1.0 / math.sqrt(step))


def adafactor_lr(group: dict[str, Any], state: dict[str, Any]) -> float:
    """The learning rate ``lr_t`` Adafactor used for the parameter with ``state``.

    ``rho_t * max(eps[1], RMS)`` with parameter scaling, ``rho_t`` otherwise, where
    ``rho_t`` is the relative step size (or the group's ``lr``).
    """
    rho = relative_step_size(group, int(state["step"]))
    if group["scale_parameter"]:
        return rho * max(float(group["eps"][1]), float(state["RMS"]))
    return rho


def update_plain(
    params: list[Tensor],
    grads: list[Tensor],
    states: list[dict[str, Any]],
    beta2t: list[float],
    lr_t: Tensor,
    *,
    eps1: float,
    clip: float,
    beta1: float | None,
) -> None:
    """Step parameters with fewer than two dimensions together (``torch._foreach_*``)."""
    exp_avg_sqs = [s["exp_avg_sq"] for s in states]
    update: _Tensors = torch._foreach_mul(grads, grads)
    torch._foreach_add_(update, eps1)
    _ema_(exp_avg_sqs, update, beta2t)
    update = _foreach_rsqrt(exp_avg_sqs)
    torch._foreach_mul_(update, grads)
    numel = torch.tensor(
        [math.sqrt(g.numel()) for g in grads], dtype=lr_t.dtype, device=lr_t.device
    )
    denom = torch.stack(torch._foreach_norm(update)).div_(numel).div_(clip).clamp_(min=1.0)
    torch._foreach_mul_(update, list(lr_t.div(denom).unbind(0)))
    if beta1 is not None:
        exp_avgs = [s["exp_avg"] for s in states]
        torch._foreach_mul_(exp_avgs, beta1)
        torch._foreach_add_(exp_avgs, update, alpha=1.0 - beta1)
        update = exp_avgs
    torch._foreach_sub_(params, update)


def update_factored(
    p: Tensor,
    grad: Tensor,
    state: dict[str, Any],
    beta2t: float,
    lr_t: Tensor,
    workspace: Tensor,
    *,
    eps1: float,
    clip: float,
    beta1: float | None,
) -> None:
    """Step one parameter with a factored second moment, in ``workspace``."""
    row, col = state["exp_avg_sq_row"], state["exp_avg_sq_col"]
    work = workspace[: grad.numel()].view(grad.shape)
    torch.mul(grad, grad, out=work)  # g**2 (eps1 is added to the means)
    # torch's reductions (not BLAS sums, which lose precision over many rows); for
    # g**2 >> eps1, mean(g**2) + eps1 == mean(g**2 + eps1) exactly in float32.
    row_mean = work.mean(-1).add_(eps1)
    col_mean = work.mean(-2).add_(eps1)
    row.mul_(beta2t).add_(row_mean, alpha=1.0 - beta2t)
    col.mul_(beta2t).add_(col_mean, alpha=1.0 - beta2t)
    r_factor = torch.div(row, row.mean(-1, keepdim=True)).rsqrt_()
    c_factor = col.rsqrt()
    # The update (r_i * c_j) * g_ij, and its RMS with the same float32 reduction as
    # transformers (the clipping divides by it, so its rounding shows in the result).
    torch.mul(r_factor.unsqueeze(-1), c_factor.unsqueeze(-2), out=work).mul_(grad)
    denom = torch.linalg.vector_norm(work).div_(math.sqrt(grad.numel())).div_(clip)
    scale = lr_t / denom.clamp_(min=1.0)
    if beta1 is None:
        p.addcmul_(work, scale, value=-1.0)
    else:
        exp_avg = state["exp_avg"]
        exp_avg.mul_(beta1).addcmul_(work, scale, value=1.0 - beta1)
        p.sub_(exp_avg)


def _ema_(averages: _Tensors, values: _Tensors, betas: list[float]) -> None:
    """``a = beta * a + (1 - beta) * v`` for each pair (one foreach call when betas agree)."""
    if len(set(betas)) == 1:
        torch._foreach_mul_(averages, betas[0])
        torch._foreach_add_(averages, values, alpha=1.0 - betas[0])
        return
    for avg, value, beta in zip(averages, values, betas, strict=True):
        avg.mul_(beta).add_(value, alpha=1.0 - beta)


def _foreach_rsqrt(tensors: _Tensors) -> _Tensors:
    """``torch._foreach_rsqrt`` where torch has it (2.5+), else the same per tensor."""
    fn = getattr(torch, "_foreach_rsqrt", None)
    if fn is not None:
        return fn(tensors)  # type: ignore[no-any-return]
    return [t.rsqrt() for t in tensors]
