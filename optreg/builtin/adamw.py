"""``adamw_hf``: the classic transformers AdamW, multi-tensor.

Adam moments with the bias correction folded into the step size (``correct_bias``),
``eps`` added outside the square root, and decoupled weight decay applied *after*
the update: ``p -= lr * weight_decay * p``. The defaults are transformers'
(``eps=1e-6``, ``weight_decay=0.0``), not torch's. Parameters are updated with
``torch._foreach_*`` kernels, one call per (device, dtype) bucket.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from optreg._core import validate

__all__ = ["ClassicAdamW"]


def _check_number(name: str, value: object, low: float, high: float | None = None) -> float:
    """transformers' wording: ``Invalid learning rate: -1.0 - should be >= 0.0``."""
    return validate.real(
        name,
        value,
        low=low,
        high=high,
        high_open=True,
        finite=False,
        message="Invalid {what}: {value} - should be {allowed}",
    )


class ClassicAdamW(Optimizer):
    """AdamW as transformers shipped it (``transformers.AdamW``), without the warning.

    Per parameter, with ``t`` the step count after the increment::

        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        step = lr * sqrt(1 - beta2**t) / (1 - beta1**t)   # lr if not correct_bias
        p -= step * m / (sqrt(v) + eps)
        p -= lr * weight_decay * p                         # if weight_decay > 0

    Args:
        params: parameters or param-group dicts.
        lr: learning rate (>= 0).
        betas: ``(beta1, beta2)``, each in ``[0, 1)``.
        eps: added to the square root of the second moment (>= 0).
        weight_decay: decoupled weight decay (>= 0).
        correct_bias: fold Adam's bias correction into the step size.

    Raises:
        ValueError: ``lr``, ``betas``, ``eps`` or ``weight_decay`` out of range
            (the message shows the value).
        TypeError: a hyperparameter that is not a number.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        correct_bias: bool = True,
    ) -> None:
        lr = _check_number("learning rate", lr, 0.0)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"Invalid betas: {betas!r} - should be a pair (beta1, beta2)")
        beta1 = _check_number("beta parameter", betas[0], 0.0, 1.0)
        beta2 = _check_number("beta parameter", betas[1], 0.0, 1.0)
        eps = _check_number("epsilon value", eps, 0.0)
        weight_decay = _check_number("weight_decay value", weight_decay, 0.0)
        defaults = {
            "lr": lr,
            "betas": (beta1, beta2),
            "eps": eps,
            "weight_decay": weight_decay,
            "correct_bias": bool(correct_bias),
        }
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (``__init__`` adds each given one here).

        Raises:
            ValueError: a complex parameter (its second moment is ``g * g``, which is
                not ``|g|**2`` for complex values; use ``adamw``, which views them as
                real).
        """
        super().add_param_group(param_group)
        index = len(self.param_groups) - 1
        try:
            validate.real_parameters(
                "adamw_hf",
                index,
                self.param_groups[-1]["params"],
                "its second moment g*g is not |g|^2 for complex values; 'adamw' views them as real",
            )
        except ValueError:
            self.param_groups.pop()
            raise

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
            self._step_group(group)
        return loss

    def _step_group(self, group: dict[str, Any]) -> None:
        buckets: dict[tuple[torch.device, torch.dtype], list[list[Any]]] = {}
        for p in group["params"]:
            grad = p.grad
            if grad is None:
                continue
            if grad.is_sparse:
                raise RuntimeError(
                    "adamw_hf does not support sparse gradients; use sparse_adam instead"
                )
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["step"] += 1
            bucket = buckets.get((p.device, p.dtype))
            if bucket is None:
                bucket = buckets[(p.device, p.dtype)] = [[], [], [], [], []]
            bucket[0].append(p)
            bucket[1].append(grad)
            bucket[2].append(state["exp_avg"])
            bucket[3].append(state["exp_avg_sq"])
            bucket[4].append(state["step"])
        if not buckets:
            return
        beta1, beta2 = group["betas"]
        lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
        for params, grads, exp_avgs, exp_avg_sqs, steps in buckets.values():
            torch._foreach_mul_(exp_avgs, beta1)
            torch._foreach_add_(exp_avgs, grads, alpha=1.0 - beta1)
            torch._foreach_mul_(exp_avg_sqs, beta2)
            torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1.0 - beta2)
            denoms = torch._foreach_sqrt(exp_avg_sqs)
            torch._foreach_add_(denoms, eps)
            if group["correct_bias"]:
                step_sizes = [-lr * math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t) for t in steps]
                if len(set(step_sizes)) == 1:
                    torch._foreach_addcdiv_(params, exp_avgs, denoms, value=step_sizes[0])
                else:
                    torch._foreach_addcdiv_(params, exp_avgs, denoms, step_sizes)
            else:
                torch._foreach_addcdiv_(params, exp_avgs, denoms, value=-lr)
            if weight_decay > 0.0:
                torch._foreach_add_(params, params, alpha=-lr * weight_decay)
