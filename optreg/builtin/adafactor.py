"""``adafactor``: transformers' Adafactor, fast (its schedule proxy:
`optreg.builtin.adafactor_schedule`).

The maths is transformers' (``transformers.optimization.Adafactor``): relative step
size, parameter scale, factored second moment for parameters with two or more
dimensions, update clipping, optional first moment, fp16/bf16 parameters updated
through an fp32 copy. The implementation differs only where that makes it faster or
exact:

* a factored parameter is stepped a block of rows at a time, in two passes over its
  gradient (the first gathers the row and column averages and the update's norm, the
  second writes the parameter, with the weight decay) through one reusable workspace of
  one block (`optreg.builtin.adafactor_math.update_factored()`): no temporary the
  size of a parameter;
* parameters with fewer than two dimensions are updated together with
  ``torch._foreach_*`` kernels;
* norms of large tensors are reduced over rows first
  (`optreg.builtin.adafactor_math.rms()`): float32 then stays within ~1e-7 of the
  exact value, where transformers' single norm drifts by ~1e-3 at twenty million values
  on the CPU;
* no ``.item()`` on a device tensor: parameter RMS and learning rates stay tensors;
* the step count is a tensor and the state exists before a compiled step runs
  (``_init_group``, which dynamo runs eagerly): under ``torch.compile`` the step compiles
  once, and a tensor ``lr`` lets a schedule change it without a recompile.

``benchmarks/bench_adafactor.py`` measures the speed and the distance from a float64 run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

import torch
from torch import Tensor
from torch.optim import Optimizer

from optreg._core import validate
from optreg.builtin.adafactor_math import (
    adafactor_lr,
    block_rows,
    load_step,
    new_step,
    operand,
    relative_step_size,
    rms_all,
    step_value,
    update_factored,
    update_plain,
    update_single,
)
from optreg.builtin.torch_optim import restore_saved_dtypes

__all__ = ["GROUP_KEYS", "Adafactor", "adafactor_lr"]

_LOW_PRECISION = (torch.float16, torch.bfloat16)
_Tensors = list[Tensor] | tuple[Tensor, ...]
_PLAIN = (Tensor, torch.nn.Parameter)
GROUP_KEYS = ("eps", "relative_step", "scale_parameter", "warmup_init")


class Adafactor(Optimizer):
    """Adafactor (Shazeer & Stern, 2018) with transformers' semantics and defaults.

    Per parameter (fp32 maths for fp16/bf16 parameters), ``t`` the step count::

        RMS = ||p|| / sqrt(numel(p))
        lr_t = rho_t * (max(eps[1], RMS) if scale_parameter else 1)
        rho_t = min(1e-6 * t if warmup_init else 1e-2, 1 / sqrt(t)) if relative_step else lr
        beta2_t = 1 - t ** decay_rate
        second moment of g**2 + eps[0]: factored (row and column means) for >= 2-D
        u = g / sqrt(second moment);  u /= max(1, RMS(u) / clip_threshold);  u *= lr_t
        m = beta1 * m + (1 - beta1) * u;  u = m                 # if beta1 is not None
        p -= weight_decay * lr_t * p;  p -= u

    Args:
        params: parameters or param-group dicts.
        lr: external learning rate; only with ``relative_step=False`` (then required). A
            one-element tensor is kept as it is: a schedule fills it in place, and a
            compiled step does not recompile as it changes.
        eps: ``(eps1, eps2)``: added to the squared gradient; floor of the parameter scale.
        clip_threshold: threshold of the update's RMS (> 0).
        decay_rate: exponent of the second-moment decay (<= 0).
        beta1: first-moment coefficient in ``[0, 1)``; None keeps no first moment.
        weight_decay: decoupled weight decay (>= 0).
        scale_parameter: scale the step by the parameter's RMS.
        relative_step: use the time-dependent relative step size instead of ``lr``.
        warmup_init: warm the relative step size up linearly (needs ``relative_step``).

    Raises:
        ValueError: ``lr`` together with ``relative_step=True``; ``warmup_init``
            without ``relative_step``; no ``lr`` without ``relative_step``; a value out
            of range (the message shows it); a complex parameter.
        TypeError: a hyperparameter that is not a number.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float | Tensor | None = None,
        eps: tuple[float, float] = (1e-30, 1e-3),
        clip_threshold: float = 1.0,
        decay_rate: float = -0.8,
        beta1: float | None = None,
        weight_decay: float = 0.0,
        scale_parameter: bool = True,
        relative_step: bool = True,
        warmup_init: bool = False,
    ) -> None:
        if lr is not None and relative_step:
            raise ValueError(
                f"Cannot combine manual `lr` and `relative_step=True` options (got lr={lr!r}); "
                "pass relative_step=False to use an external learning rate"
            )
        if warmup_init and not relative_step:
            raise ValueError("`warmup_init=True` requires `relative_step=True`")
        if lr is None and not relative_step:
            raise ValueError("`relative_step=False` requires a learning rate `lr`, got None")
        if isinstance(lr, Tensor):  # a schedule fills it in place: no recompile when compiled
            if lr.numel() != 1 or lr.is_complex():
                raise ValueError(
                    f"`lr` as a tensor must hold one real number, got shape {tuple(lr.shape)} "
                    f"and {lr.dtype}"
                )
            validate.real("lr", lr.item(), low=0)
        elif lr is not None:
            lr = validate.real("lr", lr, low=0)
        if isinstance(eps, (str, bytes)) or not isinstance(eps, Sequence) or len(eps) != 2:
            raise ValueError(f"`eps` must be a pair (eps1, eps2), got {eps!r}")
        eps_pair = (validate.real("eps[0]", eps[0]), validate.real("eps[1]", eps[1]))
        if min(eps_pair) < 0.0:
            raise ValueError(f"`eps` values must be >= 0, got {eps!r}")
        validate.real("clip_threshold", clip_threshold, low=0, low_open=True)
        validate.real("decay_rate", decay_rate, high=0)
        if beta1 is not None:
            validate.real("beta1", beta1, low=0, high=1, high_open=True)
        validate.real("weight_decay", weight_decay, low=0)
        defaults = {
            "lr": lr,
            "eps": eps_pair,
            "clip_threshold": float(clip_threshold),
            "decay_rate": float(decay_rate),
            "beta1": None if beta1 is None else float(beta1),
            "weight_decay": float(weight_decay),
            "scale_parameter": bool(scale_parameter),
            "relative_step": bool(relative_step),
            "warmup_init": bool(warmup_init),
        }
        super().__init__(params, defaults)
        self._workspace: dict[tuple[torch.device, torch.dtype], Tensor] = {}

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (``__init__`` adds each given one here), checking its options.

        Raises:
            ValueError: a complex parameter; a group ``lr`` with ``relative_step=True``
                (from ``overrides`` / ``rules``: refused as the keyword is), or
                ``warmup_init`` without ``relative_step``.
        """
        super().add_param_group(param_group)
        index, group = len(self.param_groups) - 1, self.param_groups[-1]
        try:
            validate.real_parameters(
                "Adafactor",
                index,
                group["params"],
                "its factored second moment is defined for real values",
            )
            if group["relative_step"] and group["lr"] is not None:
                raise ValueError(
                    f"Cannot combine manual `lr` and `relative_step=True` options: param group "
                    f"{index} has lr={group['lr']!r} (from overrides or rules); pass "
                    "relative_step=False to use an external learning rate"
                )
            if group["warmup_init"] and not group["relative_step"]:
                raise ValueError(
                    f"`warmup_init=True` requires `relative_step=True`: param group {index} has "
                    "relative_step=False"
                )
        except ValueError:
            self.param_groups.pop()
            raise

    @staticmethod
    def _get_lr(param_group: dict[str, Any], param_state: dict[str, Any]) -> float:
        """transformers-compatible name of `adafactor_lr()`."""
        return adafactor_lr(param_group, param_state)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._workspace = {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict, keeping fp32 state for fp16/bf16 parameters.

        ``torch.optim.Optimizer`` casts floating state to the parameter's dtype; that
        would round Adafactor's fp32 moments of a bf16 parameter, so the saved dtypes
        are restored afterwards.
        """
        super().load_state_dict(state_dict)
        restore_saved_dtypes(self, state_dict)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """Perform one optimization step.

        Args:
            closure: re-evaluates the model and returns the loss (optional).

        Returns:
            The closure's loss, or None.

        Raises:
            RuntimeError: a parameter has a sparse gradient.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._init_group(group)
            buckets: dict[tuple[torch.device, torch.dtype], list[Tensor]] = {}
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("Adafactor does not support sparse gradients.")
                if type(p) not in _PLAIN:  # DTensor (FSDP2) and other subclasses
                    self._step_single(group, p)
                    continue
                key = (p.device, _compute_dtype(p))
                if key not in buckets:  # not setdefault: torch 2.4's dynamo breaks on it
                    buckets[key] = []
                buckets[key].append(p)
            for (device, dtype), params in buckets.items():
                self._step_bucket(group, params, device, dtype)
        return loss

    def _init_group(self, group: dict[str, Any]) -> None:
        """Create the state of the group's parameters that have gradients (or, after a
        load, move and cast it to theirs).

        Under ``torch.compile`` dynamo runs a method of this name eagerly, as it does for
        torch.optim's optimizers, and guards on the state it leaves: the first compiled
        step already sees the state, so the second does not recompile.
        """
        for p in group["params"]:
            if p.grad is not None and not p.grad.is_sparse and type(p) in _PLAIN:
                dtype = _compute_dtype(p)
                self._init_state(p, group, dtype)
                if p.dim() >= 2 and p.numel():
                    self._buffer(p.device, dtype, _block_numel(p))

    def _init_state(self, p: Tensor, group: dict[str, Any], dtype: torch.dtype) -> dict[str, Any]:
        state: dict[str, Any] = self.state[p]
        shape = p.shape
        if not state:
            state["step"] = new_step()
            if group["beta1"] is not None:
                state["exp_avg"] = torch.zeros(shape, dtype=dtype, device=p.device)
            if len(shape) >= 2:
                state["exp_avg_sq_row"] = torch.zeros(shape[:-1], dtype=dtype, device=p.device)
                state["exp_avg_sq_col"] = torch.zeros(
                    shape[:-2] + shape[-1:], dtype=dtype, device=p.device
                )
            else:
                state["exp_avg_sq"] = torch.zeros(shape, dtype=dtype, device=p.device)
            state["RMS"] = torch.zeros((), dtype=dtype, device=p.device)
        else:
            load_step(state)
            for key, value in state.items():
                if key == "step":
                    continue
                if isinstance(value, Tensor) and (value.dtype != dtype or value.device != p.device):
                    value = value.to(device=p.device, dtype=dtype)
                state[key] = value.contiguous() if isinstance(value, Tensor) else value
        return state

    def _step_single(self, group: dict[str, Any], p: Tensor) -> None:
        """One parameter, plain tensor operations only: for tensor subclasses (DTensor).

        State tensors are created from tensors computed from the gradient, so they
        inherit its subclass and placement.
        """
        grad = cast(Tensor, p.grad)
        low = p.dtype in _LOW_PRECISION
        if low:
            grad = grad.float()
        p32 = p.float() if low else p
        state: dict[str, Any] = self.state[p]
        if not state:
            state["step"] = new_step()
        load_step(state)
        state["step"] += 1
        update_single(p32, grad, state, group, step_value(state["step"]))
        if low:
            p.copy_(p32)

    def _buffer(self, device: torch.device, dtype: torch.dtype, numel: int) -> Tensor:
        buf = self._workspace.get((device, dtype))
        if buf is None or buf.numel() < numel:
            buf = torch.empty(numel, dtype=dtype, device=device)
            self._workspace[(device, dtype)] = buf
        return buf[:numel]

    def _step_bucket(
        self, group: dict[str, Any], params: list[Tensor], device: torch.device, dtype: torch.dtype
    ) -> None:
        eps1, eps2 = group["eps"]
        beta1 = group["beta1"]
        clip = group["clip_threshold"]
        weight_decay = group["weight_decay"]
        states = [self.state[p] for p in params]
        for state in states:
            state["step"] += 1
        steps = [step_value(s["step"]) for s in states]
        low = [p for p in params if p.dtype != dtype]
        p32 = [p.to(dtype) if p.dtype != dtype else p for p in params]
        grads = [cast(Tensor, p.grad).to(dtype) for p in params]  # no copy when dtype matches

        # RMS of each parameter, then lr_t, as tensors (no host sync).
        rms_p = rms_all(p32)
        torch._foreach_copy_([s["RMS"] for s in states], list(rms_p.unbind(0)))
        rho = _stack([relative_step_size(group, t) for t in steps], device, dtype)
        lr_t = rms_p.clamp(min=eps2).mul_(rho) if group["scale_parameter"] else rho
        beta2t = [operand(1.0 - t ** group["decay_rate"], p32[0]) for t in steps]

        # an empty parameter has nothing to update (its step count and RMS still advance)
        factored = [i for i, p in enumerate(params) if p.dim() >= 2 and p.numel()]
        plain = [i for i, p in enumerate(params) if p.dim() < 2]
        decay = lr_t.mul(-weight_decay).add_(1.0) if weight_decay != 0.0 else None
        if plain:
            if decay is not None:
                torch._foreach_mul_([p32[i] for i in plain], list(decay[plain].unbind(0)))
            update_plain(
                [p32[i] for i in plain],
                [grads[i] for i in plain],
                [states[i] for i in plain],
                [beta2t[i] for i in plain],
                lr_t[plain],
                eps1=eps1,
                clip=clip,
                beta1=beta1,
            )
        if factored:
            lr_f = lr_t[factored].unbind(0)
            decay_f = [None] * len(factored) if decay is None else decay[factored].unbind(0)
            workspace = self._buffer(device, dtype, max(_block_numel(params[i]) for i in factored))
            for k, i in enumerate(factored):
                update_factored(
                    p32[i],
                    grads[i],
                    states[i],
                    beta2t[i],
                    lr_f[k],
                    workspace,
                    eps1=eps1,
                    clip=clip,
                    beta1=beta1,
                    decay=decay_f[k],
                )
        if low:
            torch._foreach_copy_(low, [p32[i] for i, p in enumerate(params) if p.dtype != dtype])


def _compute_dtype(p: Tensor) -> torch.dtype:
    """The dtype of ``p``'s maths and state: float32 for fp16 / bf16, else its own."""
    return torch.float32 if p.dtype in _LOW_PRECISION else p.dtype


def _stack(values: list[float | Tensor], device: torch.device, dtype: torch.dtype) -> Tensor:
    """Per-parameter scalars as one tensor on ``device`` (one copy from the host)."""
    if any(isinstance(v, Tensor) for v in values):
        return torch.stack([torch.as_tensor(v).reshape(()) for v in values]).to(
            device=device, dtype=dtype
        )
    return torch.tensor(values, dtype=dtype, device=device)


def _block_numel(p: Tensor) -> int:
    """Values in one block of `update_factored()`'s workspace for ``p``."""
    m, n = p.shape[-2], p.shape[-1]
    batch = p.numel() // (m * n)
    return batch * block_rows(batch, m, n) * n
