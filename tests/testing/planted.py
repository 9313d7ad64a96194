"""Optimizers planted to fail one capability each; the distributed workers import this
module (``setup="planted:register"``) to see the names the test registers."""

from __future__ import annotations

import os
from typing import Any

import torch

import optreg


class _Base(torch.optim.Optimizer):
    def __init__(self, params: Any, lr: float = 0.1) -> None:
        super().__init__(params, {"lr": lr})

    def _update(self, p: torch.Tensor) -> None:
        p.add_(p.grad, alpha=-0.1)  # type: ignore[arg-type]

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p)


class Growing(_Base):
    """Allocates a scratch tensor one longer every step: each new shape recompiles."""

    def _update(self, p: torch.Tensor) -> None:
        seen = self.state[p].setdefault("seen", [])
        seen.append(0)
        super()._update(p)
        p.add_(torch.zeros(len(seen)).sum())


class NanInBf16(_Base):
    def _update(self, p: torch.Tensor) -> None:
        super()._update(p)
        if p.dtype == torch.bfloat16:
            p.fill_(float("nan"))


class MixesDTensor(_Base):
    """Adds a plain tensor of the parameter's shape: fine, until the parameter is a
    DTensor shard (FSDP2), where torch refuses to mix the two."""

    def _update(self, p: torch.Tensor) -> None:
        super()._update(p)
        p.add_(torch.zeros(p.shape))


class DiesOnRank1(_Base):
    """Exits the second rank of a process group in the middle of a step."""

    def _update(self, p: torch.Tensor) -> None:
        import torch.distributed as dist

        if dist.is_initialized() and dist.get_rank() == 1:
            os._exit(3)
        super()._update(p)


class KeepsACounter(_Base):
    """Keeps a step counter beside the per-parameter states (as SPAM and MADGRAD do)."""

    def _update(self, p: torch.Tensor) -> None:
        self.state["steps"] = int(self.state.get("steps", 0)) + 1  # type: ignore[call-overload]
        self.state[p].setdefault("momentum", torch.zeros_like(p))
        super()._update(p)


class Breaks(_Base):
    """Branches in Python on a tensor every step: a graph break under compile."""

    def _update(self, p: torch.Tensor) -> None:
        if p.grad.abs().sum() >= 0:  # type: ignore[union-attr]
            super()._update(p)


PLANTED = {
    "growing": Growing,
    "nan_bf16": NanInBf16,
    "mixes_dtensor": MixesDTensor,
    "dies_on_rank_1": DiesOnRank1,
    "breaks": Breaks,
}


def register() -> None:
    for name, cls in PLANTED.items():
        optreg.register_optimizer(name, cls)
