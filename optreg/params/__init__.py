"""Parameter groups: the weight-decay split, per-name overrides and rules, and the one
home of "embedding / output head / norm / (name, tensor) pairs".

The public helpers below import torch when first used (``import optreg`` does not).
The one grouping function is [optreg.group_parameters][]; ``param_groups`` here is its
deprecated former name (the weight-decay split and overrides only).
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
    )


def param_groups(
    params: Any,
    *,
    weight_decay: float | None = None,
    no_decay: Any = None,
    overrides: Any = None,
    lr: Any = None,
) -> list[dict[str, Any]]:
    """Deprecated: [optreg.group_parameters][] makes the same groups (and takes ``rules``
    and ``layer_decay`` too).

    Returns:
        Fresh param-group dicts.

    Raises:
        TypeError: what [optreg.group_parameters][] raises for bad ``params``.
        ValueError: what [optreg.group_parameters][] raises for bad values.
    """
    import warnings

    from optreg.params._grouping import group_parameters

    warnings.warn(
        "optreg.params.param_groups is deprecated: call optreg.group_parameters(params, "
        "weight_decay=..., no_decay=..., overrides=..., lr=...), which makes the same groups",
        DeprecationWarning,
        stacklevel=2,
    )
    return group_parameters(
        params, weight_decay=weight_decay, no_decay=no_decay, overrides=overrides, lr=lr
    )


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'optreg.params' has no attribute {name!r}")
    from optreg.params import _split

    value = getattr(_split, name)
    globals()[name] = value
    return value
