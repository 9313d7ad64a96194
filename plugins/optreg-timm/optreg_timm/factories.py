"""One factory per timm name: ``timm.optim.create_optimizer_v2(params, opt=NAME, **kwargs)``.

``optreg_timm.factories:adamw`` is resolved by the module's ``__getattr__``, so the
registry's lazy ``"module:attr"`` targets reach every name without a function each.
Each factory carries the signature of what timm builds for the name, read from timm
when first asked for: the class's own keywords with the defaults ``create_optimizer_v2``
gives them, so ``optreg info sgdp`` shows that ``lr`` is required, and ``**kwargs`` for
timm's grouping options.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import torch

from optreg_timm._names import NAMES

__all__ = ["Factory", "factory", "signature"]

_KEYWORD = inspect.Parameter.KEYWORD_ONLY
#: create_optimizer_v2's own options that reach the optimizer class (timm 1.0)
_GIVEN = {"weight_decay": 0.0}
_MOMENTUM = 0.9


def signature(name: str) -> inspect.Signature | None:
    """The signature of timm's factory for ``name``; None when timm names the class by a
    string (the apex and bitsandbytes names: their module may not be importable).

    ``lr`` is required where the class requires it (``sgdp``, ``csgdp``): timm passes no
    ``lr`` of its own. ``weight_decay`` defaults to timm's 0.0, ``momentum`` to 0.9 where
    the class has one, and the name's own defaults (``nlars``: ``nesterov=True``) apply.
    """
    from timm.optim import get_optimizer_info
    from torch.optim.optimizer import required

    info = get_optimizer_info(name)
    if isinstance(info.opt_class, str):
        return None
    given = {**_GIVEN, **(info.defaults or {})}
    if info.has_momentum:
        given.setdefault("momentum", _MOMENTUM)
    params = [inspect.Parameter("params", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for p in list(inspect.signature(info.opt_class).parameters.values())[1:]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        value = given.get(p.name, p.default)
        if value is required:
            value = inspect.Parameter.empty
        params.append(p.replace(kind=_KEYWORD, default=value))
    params.append(inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD))
    return inspect.Signature(params, return_annotation=torch.optim.Optimizer)


class Factory:
    """The factory of timm's optimizer ``name``: ``(params, **kwargs) -> Optimizer``.

    Its ``__signature__`` (:func:`signature`) is read from timm when first asked for, so
    loading the factory imports no timm; calling it does.

    Args:
        name: one of timm's names.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.__name__ = self.__qualname__ = name
        self.__doc__ = f"timm.optim.create_optimizer_v2(params, opt={name!r}, **kwargs)"

    @functools.cached_property
    def __signature__(self) -> inspect.Signature | None:
        """What timm builds for the name (None for the apex and bitsandbytes names)."""
        return signature(self.name)

    def __call__(self, params: Any, **kwargs: Any) -> torch.optim.Optimizer:
        """``create_optimizer_v2(params, opt=name, filter_bias_and_bn=False, **kwargs)``.

        Raises:
            TypeError: a keyword the class has no default for (``lr`` for ``sgdp``) is
                missing.
        """
        from timm.optim import create_optimizer_v2

        sig = self.__signature__
        required = (
            []
            if sig is None
            else [
                p.name
                for p in sig.parameters.values()
                if p.kind is _KEYWORD and p.default is p.empty
            ]
        )
        absent = [k for k in required if k not in kwargs]
        if absent:
            raise TypeError(
                f"timm's optimizer {self.name!r} has no default for {', '.join(absent)}: pass "
                f"{absent[0]}=... (for instance get_optimizer({self.name!r}, model, lr=0.01))"
            )
        # optreg already made the param groups (no-decay split, rules): timm must not
        # split them again
        kwargs.setdefault("filter_bias_and_bn", False)
        return create_optimizer_v2(params, opt=self.name, **kwargs)


@functools.cache
def factory(name: str) -> Factory:
    """The factory of timm's optimizer ``name``.

    Raises:
        AttributeError: ``name`` is not one of timm's names.
    """
    if name not in NAMES:
        raise AttributeError(f"timm has no optimizer {name!r}")
    return Factory(name)


def __getattr__(name: str) -> Any:
    return factory(name)
