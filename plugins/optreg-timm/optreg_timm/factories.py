"""One factory per timm name: ``timm.optim.create_optimizer_v2(params, opt=NAME, **kwargs)``.

``optreg_timm.factories:adamw`` is resolved by the module's ``__getattr__``, so the
registry's lazy ``"module:attr"`` targets reach every name without a function each.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from optreg_timm._names import NAMES

__all__ = ["factory"]


@functools.cache
def factory(name: str) -> Any:
    """The factory of timm's optimizer ``name``.

    Raises:
        AttributeError: ``name`` is not one of timm's names.
    """
    if name not in NAMES:
        raise AttributeError(f"timm has no optimizer {name!r}")

    def build(params: Any, **kwargs: Any) -> torch.optim.Optimizer:
        from timm.optim import create_optimizer_v2

        # optreg already made the param groups (no-decay split, rules): timm must not
        # split them again
        kwargs.setdefault("filter_bias_and_bn", False)
        return create_optimizer_v2(params, opt=name, **kwargs)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"timm.optim.create_optimizer_v2(params, opt={name!r}, **kwargs)"
    return build


def __getattr__(name: str) -> Any:
    return factory(name)
