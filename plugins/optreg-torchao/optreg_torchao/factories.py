"""transformers' ``adamw_torch_4bit`` / ``adamw_torch_8bit``: torchao's classes with the
block size transformers gives them (``optim_args`` default ``block_size=256``; torchao's
own 4-bit default is 128)."""

from __future__ import annotations

from typing import Any

import torch
from torchao.optim import AdamW4bit, AdamW8bit

__all__ = ["adamw_torch_4bit", "adamw_torch_8bit"]


def _as_transformers_builds(cls: type[torch.optim.Optimizer], name: str) -> Any:
    def build(
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        amsgrad: bool = False,
        *,
        block_size: int = 256,
        bf16_stochastic_round: bool = False,
    ) -> torch.optim.Optimizer:
        return cls(
            params,
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            block_size=block_size,
            bf16_stochastic_round=bf16_stochastic_round,
        )

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"torchao.optim.{cls.__name__} with transformers' block size (256)."
    return build


adamw_torch_4bit = _as_transformers_builds(AdamW4bit, "adamw_torch_4bit")
adamw_torch_8bit = _as_transformers_builds(AdamW8bit, "adamw_torch_8bit")
