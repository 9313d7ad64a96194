"""Builtin schedule names (importable without loading any plugin)."""

from __future__ import annotations

import enum

__all__ = ["SchedulerType"]


class SchedulerType(str, enum.Enum):
    """The builtin scheduler names; values equal transformers' ``SchedulerType``."""

    LINEAR = "linear"
    COSINE = "cosine"
    COSINE_WITH_RESTARTS = "cosine_with_restarts"
    POLYNOMIAL = "polynomial"
    CONSTANT = "constant"
    CONSTANT_WITH_WARMUP = "constant_with_warmup"
    INVERSE_SQRT = "inverse_sqrt"
    REDUCE_ON_PLATEAU = "reduce_lr_on_plateau"
    COSINE_WITH_MIN_LR = "cosine_with_min_lr"
    COSINE_WARMUP_WITH_MIN_LR = "cosine_warmup_with_min_lr"
    WARMUP_STABLE_DECAY = "warmup_stable_decay"
    GREEDY = "greedy"
    ADAFACTOR = "adafactor"
    SEQUENCE = "sequence"

    def __str__(self) -> str:
        return self.value
