"""Signum: SGD on the sign of a momentum buffer (Bernstein et al., 2018, "signSGD").

Per parameter with gradient ``g``, momentum ``beta`` and learning rate ``lr``::

    m <- beta * m + (1 - beta) * g
    p <- p * (1 - lr * weight_decay) - lr * sign(m)

Everything the update depends on lives in ``self.state`` (the momentum buffer and
the step count), so ``state_dict()`` / ``load_state_dict()`` resume exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer

__all__ = ["Signum"]


class Signum(Optimizer):
    """Sign-of-momentum SGD with decoupled weight decay.

    Args:
        params: tensors or param-group dicts.
        lr: learning rate (step size of every coordinate), >= 0.
        beta: momentum coefficient in [0, 1); 0 gives plain signSGD.
        weight_decay: decoupled weight decay, >= 0.

    Raises:
        ValueError: a hyperparameter out of range (the message shows the value).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        beta: float = 0.9,
        weight_decay: float = 0.0,
    ) -> None:
        if not lr >= 0.0:
            raise ValueError(f"Invalid learning rate: {lr} (must be >= 0)")
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta: {beta} (must be in [0, 1))")
        if not weight_decay >= 0.0:
            raise ValueError(f"Invalid weight_decay: {weight_decay} (must be >= 0)")
        super().__init__(params, {"lr": lr, "beta": beta, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; return the closure's loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, beta, wd = group["lr"], group["beta"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("Signum does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["step"] = torch.tensor(0.0)
                    state["momentum"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                m = state["momentum"]
                m.mul_(beta).add_(p.grad, alpha=1.0 - beta)
                if wd:
                    p.mul_(1.0 - lr * wd)
                p.add_(torch.sign(m), alpha=-lr)
        return loss
