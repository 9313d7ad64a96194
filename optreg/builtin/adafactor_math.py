"""Adafactor's arithmetic, shared by the optimizer and its schedule proxy: the relative
step size, ``lr_t``, and the two in-place updates (factored for parameters with two or
more dimensions, plain ``torch._foreach_*`` for the rest). Formulas: transformers'
``Adafactor`` (``/shared/REFERENCE.md``); see `optreg.builtin.adafactor` for how the
implementation saves passes.

The step count is a tensor in the state; `step_value()` hands it to the arithmetic as
a Python number in eager mode and as the tensor itself under ``torch.compile``, so the
per-step scalars (``rho_t``, ``beta2_t``) are computed by one expression either way and a
compiled step does not recompile as the count changes.
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch
from torch import Tensor

__all__ = [
    "BLOCK",
    "adafactor_lr",
    "block_rows",
    "load_step",
    "new_step",
    "operand",
    "relative_step_size",
    "rms",
    "rms_all",
    "step_value",
    "update_factored",
    "update_plain",
    "update_single",
]

_Tensors = list[Tensor] | tuple[Tensor, ...]
Scalar = float | Tensor

#: Elements per block of rows the factored update works on (4 MiB in float32): a block's
#: squared gradient and update are written and read back while they are in the cache.
BLOCK = 1 << 20

#: Above this many values a norm is taken over row norms: torch's float32 norm on the CPU
#: accumulates serially (a relative error of ~1e-3 at 2e7 values), row norms do not.
_FLAT_NORM = 1 << 16


def new_step() -> Tensor:
    """A fresh step count: a float64 CPU tensor (exact to 2**53 steps)."""
    return torch.zeros((), dtype=torch.float64)


def step_value(step: Tensor) -> Scalar:
    """The step count as a Python float in eager mode, the tensor under ``torch.compile``."""
    if torch.compiler.is_compiling():
        return step
    return step.item()


def relative_step_size(group: dict[str, Any], step: Scalar) -> Scalar:
    """``rho_t``: the relative step size at ``step``, or the group's ``lr`` without one
    (a tensor lr as it is)."""
    if not group["relative_step"]:
        lr = group["lr"]
        return lr if isinstance(lr, Tensor) else float(lr)
    if isinstance(step, Tensor):
        bound = step * 1e-6 if group["warmup_init"] else 1e-2
        return torch.clamp(step.rsqrt(), max=bound)
    return min(1e-6 * step if group["warmup_init"] else 1e-2, 1.0 / math.sqrt(step))


def load_step(state: dict[str, Any]) -> None:
    """A step count saved as a number (before optreg 0.3, and transformers') as a tensor."""
    if not isinstance(state["step"], Tensor):
        state["step"] = new_step().fill_(float(state["step"]))


def operand(value: Scalar, like: Tensor) -> Scalar:
    """A per-step scalar as the update's ops take it: a float, or (under
    ``torch.compile``) a 0-dim tensor of ``like``'s dtype and device."""
    if isinstance(value, Tensor):
        return value.to(device=like.device, dtype=like.dtype)
    return value


def adafactor_lr(group: dict[str, Any], state: dict[str, Any]) -> float:
    """The learning rate ``lr_t`` Adafactor used for the parameter with ``state``.

    ``rho_t * max(eps[1], RMS)`` with parameter scaling, ``rho_t`` otherwise, where
    ``rho_t`` is the relative step size (or the group's ``lr``).
    """
    rho = float(relative_step_size(group, float(state["step"])))
    if group["scale_parameter"]:
        return rho * max(float(group["eps"][1]), float(state["RMS"]))
    return rho


def rms(t: Tensor) -> Tensor:
    """``||t|| / sqrt(numel)``, accurate in float32 for tensors of any size.

    Large tensors are reduced as the norm of their rows' norms (blocks of
    `_FLAT_NORM` values for 1-D ones), which keeps float32's rounding error near
    1e-7 where one flat norm loses about 1e-3 at twenty million values on the CPU.
    """
    n = t.numel()
    if n <= _FLAT_NORM:
        norm = torch.linalg.vector_norm(t)
    elif t.dim() >= 2:
        norm = torch.linalg.vector_norm(torch.linalg.vector_norm(t, dim=-1))
    else:
        norm = torch.linalg.vector_norm(
            torch.stack([torch.linalg.vector_norm(b) for b in torch.split(t, _FLAT_NORM)])
        )
    return cast(Tensor, norm.div_(math.sqrt(n)))


def rms_all(tensors: _Tensors) -> Tensor:
    """`rms()` of each tensor, stacked: one ``torch._foreach_norm`` for those of up to
    `_FLAT_NORM` values, `rms()` for each larger one."""
    small = [i for i, t in enumerate(tensors) if t.numel() <= _FLAT_NORM]
    large = [i for i, t in enumerate(tensors) if t.numel() > _FLAT_NORM]
    values: list[Tensor] = [torch.empty(0)] * len(tensors)
    if small:
        norms = torch._foreach_norm([tensors[i] for i in small])
        scaled = torch._foreach_div(norms, [math.sqrt(tensors[i].numel()) for i in small])
        for i, value in zip(small, scaled, strict=True):
            values[i] = value
    for i in large:
        values[i] = rms(tensors[i])
    return torch.stack(values)


def update_plain(
    params: list[Tensor],
    grads: list[Tensor],
    states: list[dict[str, Any]],
    beta2t: list[Scalar],
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
    # v = beta2t * v + (1 - beta2t) * (g**2 + eps1)
    torch._foreach_mul_(exp_avg_sqs, beta2t)  # type: ignore[arg-type]  # floats, or tensors compiled
    torch._foreach_mul_(update, [1.0 - b for b in beta2t])  # type: ignore[misc]
    torch._foreach_add_(exp_avg_sqs, update)
    update = _foreach_rsqrt(exp_avg_sqs)
    torch._foreach_mul_(update, grads)
    denom = rms_all(update).div_(clip).clamp_(min=1.0)
    torch._foreach_mul_(update, list(lr_t.div(denom).unbind(0)))
    if beta1 is not None:
        exp_avgs = [s["exp_avg"] for s in states]
        torch._foreach_mul_(exp_avgs, beta1)
        torch._foreach_add_(exp_avgs, update, alpha=1.0 - beta1)
        update = exp_avgs
    torch._foreach_sub_(params, update)


def block_rows(batch: int, rows: int, cols: int) -> int:
    """Rows per block of a ``batch x rows x cols`` parameter: `BLOCK` values, at
    least one row."""
    return max(1, min(rows, BLOCK // (batch * cols)))


def update_factored(
    p: Tensor,
    grad: Tensor,
    state: dict[str, Any],
    beta2t: Scalar,
    lr_t: Tensor,
    workspace: Tensor,
    *,
    eps1: float,
    clip: float,
    beta1: float | None,
    decay: Tensor | None = None,
) -> None:
    """Step one parameter with a factored second moment, a block of rows at a time.

    With ``R``, ``C`` the row and column averages of ``g**2 + eps1`` and
    ``u = g * rsqrt(R / mean(R)) * rsqrt(C)``, the update's squared norm is
    ``sum_j (sum_i g_ij**2 / R_i) / C_j * mean(R)``: the first pass over the gradient
    gathers the row sums, the column sums and ``sum_i g_ij**2 / R_i`` (one matrix product
    per block), so the clipped scale is known before the second pass, which writes the
    parameter. Parameters with more than two dimensions are a batch of matrices over the
    last two. ``workspace`` holds one block (``block_rows`` rows); ``decay`` is the weight
    decay factor ``1 - weight_decay * lr_t``, applied in the same pass.
    """
    m, n = grad.shape[-2], grad.shape[-1]
    batch = grad.numel() // (m * n)
    g = grad.reshape(batch, m, n)
    row = state["exp_avg_sq_row"].view(batch, m)
    col = state["exp_avg_sq_col"].view(batch, n)
    k = block_rows(batch, m, n)
    # Per matrix: [column sums of g**2, column sums of g**2 / R], and their weights.
    sums = g.new_zeros(batch, 2, n)
    weights = g.new_ones(batch, 2, k)
    for a in range(0, m, k):
        b = min(m, a + k)
        block = g[:, a:b]
        sq = torch.mul(block, block, out=workspace[: block.numel()].view(block.shape))
        mean = sq.sum(-1).div_(n).add_(eps1)
        row_block = row[:, a:b]
        row_block.lerp_(mean, 1.0 - beta2t)
        weights[:, 1, : b - a] = row_block.reciprocal()
        sums.baddbmm_(weights[:, :, : b - a], sq)
    col.lerp_(sums[:, 0].div_(m).add_(eps1), 1.0 - beta2t)
    row_mean = row.mean(-1, keepdim=True)
    norm_sq = sums[:, 1].div_(col).sum(-1, keepdim=True).mul_(row_mean).sum()
    scale = lr_t / norm_sq.div_(grad.numel()).sqrt_().div_(clip).clamp_(min=1.0)
    r_factor = torch.div(row, row_mean).rsqrt_().mul_(scale).unsqueeze(-1)
    c_factor = col.rsqrt().unsqueeze(-2)
    target = p if p.is_contiguous() else p.contiguous()
    params = target.view(batch, m, n)
    exp_avg = None if beta1 is None else state["exp_avg"].view(batch, m, n)
    keep = 0.0 if beta1 is None else beta1
    for a in range(0, m, k):
        b = min(m, a + k)
        block = g[:, a:b]
        u = torch.mul(block, c_factor, out=workspace[: block.numel()].view(block.shape))
        p_block = params[:, a:b]
        if decay is not None:
            p_block.mul_(decay)
        if exp_avg is None:
            p_block.addcmul_(u, r_factor[:, a:b], value=-1.0)
        else:
            m_block = exp_avg[:, a:b]
            m_block.mul_(keep).addcmul_(u, r_factor[:, a:b], value=1.0 - keep)
            p_block.sub_(m_block)
    if target is not p:
        p.copy_(target)


def update_single(
    p32: Tensor, grad: Tensor, state: dict[str, Any], group: dict[str, Any], step: Scalar
) -> None:
    """Step one parameter with plain tensor operations only: for tensor subclasses
    (DTensor), whose state tensors are created from tensors computed from the gradient,
    so they inherit its subclass and placement."""
    eps1, eps2 = group["eps"]
    state["RMS"] = torch.linalg.vector_norm(p32) / math.sqrt(p32.numel())
    lr_t: Any = relative_step_size(group, step)
    if group["scale_parameter"]:
        lr_t = state["RMS"].clamp(min=eps2) * lr_t
    weight = 1.0 - operand(1.0 - step ** group["decay_rate"], grad)
    update = grad * grad + eps1
    if grad.dim() >= 2:
        row_mean, col_mean = update.mean(-1), update.mean(-2)
        row = state.setdefault("exp_avg_sq_row", torch.zeros_like(row_mean))
        col = state.setdefault("exp_avg_sq_col", torch.zeros_like(col_mean))
        row.lerp_(row_mean, weight)
        col.lerp_(col_mean, weight)
        r_factor = (row / row.mean(-1, keepdim=True)).rsqrt_().unsqueeze(-1)
        update = (r_factor * col.rsqrt().unsqueeze(-2)).mul_(grad)
    else:
        exp_avg_sq = state.setdefault("exp_avg_sq", torch.zeros_like(update))
        exp_avg_sq.lerp_(update, weight)
        update = exp_avg_sq.rsqrt().mul_(grad)
    rms_u = torch.linalg.vector_norm(update) / math.sqrt(update.numel())
    update.div_((rms_u / group["clip_threshold"]).clamp_(min=1.0)).mul_(lr_t)
    if group["beta1"] is not None:
        exp_avg = state.setdefault("exp_avg", torch.zeros_like(update))
        exp_avg.mul_(group["beta1"]).add_(update, alpha=1.0 - group["beta1"])
        update = exp_avg
    if group["weight_decay"] != 0.0:
        p32.mul_(1.0 - group["weight_decay"] * lr_t)
    p32.sub_(update)


def _foreach_rsqrt(tensors: _Tensors) -> _Tensors:
    """``torch._foreach_rsqrt`` where torch has it (2.5+), else the same per tensor."""
    fn = getattr(torch, "_foreach_rsqrt", None)
    if fn is not None:
        return fn(tensors)  # type: ignore[no-any-return]
    return [t.rsqrt() for t in tensors]
