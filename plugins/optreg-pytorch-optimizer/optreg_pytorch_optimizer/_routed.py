"""The base of the factories that get what ``optreg.get_optimizer`` was given.

A factory whose ``optreg_contract`` routes parameters receives the model (or the tensors) itself,
with optreg's grouping options, instead of ready param groups: LOMO, AdaLOMO and
Adam-mini take the ``nn.Module``. (The Muon family declares its sides instead, and optreg
groups for it: `optreg_pytorch_optimizer.muon`.) Its
signature, read when the name is used, is the class's own keywords with the grouping
options, so ``optreg info`` shows them.
"""

from __future__ import annotations

import abc
import importlib
import inspect
from typing import Any

import torch

from optreg import FactoryContract

__all__ = ["GROUPING", "Routed", "upstream"]

#: the grouping options optreg.get_optimizer passes a routing factory
GROUPING = ("no_decay", "overrides", "rules", "layer_decay", "layer_pattern")


def upstream(attr: str) -> type[torch.optim.Optimizer]:
    """The class ``pytorch_optimizer.<attr>`` (imports ``pytorch_optimizer``)."""
    cls: type[torch.optim.Optimizer] = getattr(importlib.import_module("pytorch_optimizer"), attr)
    return cls


class Routed(abc.ABC):
    """The factory of one ``pytorch_optimizer`` class, called with what the user gave.

    Args:
        attr: the class's name in ``pytorch_optimizer``.
        doc: the factory's one-line docstring.
    """

    optreg_contract = FactoryContract(routes_params=True)

    def __init__(self, attr: str, doc: str) -> None:
        self.attr = attr
        self.__name__ = self.__qualname__ = attr
        self.__doc__ = doc

    def upstream(self) -> type[torch.optim.Optimizer]:
        """The class (imports ``pytorch_optimizer``)."""
        return upstream(self.attr)

    @property
    def __signature__(self) -> inspect.Signature:
        """``(params, *, <the class's keywords>, <the grouping options>)``."""
        upstream = list(inspect.signature(self.upstream()).parameters.values())[1:]
        keyword = inspect.Parameter.KEYWORD_ONLY
        own = [
            p.replace(kind=keyword)
            for p in upstream
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        grouping = [inspect.Parameter(k, keyword, default=None) for k in GROUPING]
        rest = [p for p in upstream if p.kind is p.VAR_KEYWORD]
        first = inspect.Parameter("params", inspect.Parameter.POSITIONAL_OR_KEYWORD)
        return inspect.Signature(
            [first, *own, *grouping, *rest], return_annotation=torch.optim.Optimizer
        )

    def __call__(self, params: Any, **kwargs: Any) -> torch.optim.Optimizer:
        """Build the optimizer: :meth:`build` with the grouping options apart.

        Raises:
            TypeError / ValueError: what :meth:`build` and the class raise.
        """
        grouping = {k: kwargs.pop(k) for k in GROUPING if k in kwargs}
        return self.build(params, grouping, kwargs)

    @abc.abstractmethod
    def build(
        self, params: Any, grouping: dict[str, Any], kwargs: dict[str, Any]
    ) -> torch.optim.Optimizer:
        """Build the optimizer from ``params``, optreg's ``grouping`` and the class's
        ``kwargs`` (each subclass says how)."""
