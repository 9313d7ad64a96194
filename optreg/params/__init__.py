"""Parameter groups: the weight-decay split, per-name overrides and rules, and the one
home of "embedding / output head / norm / (name, tensor) pairs".

The public helpers below import torch when first used (``import optreg`` does not).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["NORM_LAYERS", "check_overrides", "matches", "named_no_decay", "param_groups"]

if TYPE_CHECKING:
    from optreg.params._split import (
        NORM_LAYERS,
        check_overrides,
        matches,
        named_no_decay,
        param_groups,
    )


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'optreg.params' has no attribute {name!r}")
    from optreg.params import _split

    value = getattr(_split, name)
    globals()[name] = value
    return value
