"""pytorch_optimizer's LOMO, AdaLOMO and Adam-mini by name: they take the model.

``LOMO(model, ...)``, ``AdaLOMO(model, ...)`` and ``AdamMini(model, ...)`` take the
``nn.Module``, not parameters: LOMO and AdaLOMO update each parameter inside their fused
backward pass (train with ``optimizer.fused_backward(loss, lr)``), and Adam-mini makes
its own groups from the parameters' names (embeddings, heads, attention blocks). These
factories hand them the model that ``optreg.get_optimizer(name, model, ...)`` was given;
optreg's own grouping (``no_decay``, ``overrides``, ``rules``, layer decay) cannot apply.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from optreg_pytorch_optimizer._routed import Routed

__all__ = ["TakesModel", "adalomo", "adammini", "lomo"]


class TakesModel(Routed):
    """The factory of a class that takes the ``nn.Module``.

    Args:
        name: the optreg name (for messages).
        attr: the class's name in ``pytorch_optimizer``.
        how: what it does with the model (for messages).
    """

    def __init__(self, name: str, attr: str, how: str) -> None:
        super().__init__(attr, f"pytorch_optimizer.{attr}(model, ...): {how}")
        self.name, self.how = name, how

    def build(
        self, params: Any, grouping: dict[str, Any], kwargs: dict[str, Any]
    ) -> torch.optim.Optimizer:
        """``Class(model, **kwargs)``.

        Raises:
            TypeError: ``params`` is not an ``nn.Module``.
            ValueError: a grouping option was given.
        """
        if not isinstance(params, nn.Module):
            raise TypeError(
                f"{self.name} takes the nn.Module ({self.how}): call "
                f"get_optimizer({self.name!r}, model, ...); got {type(params).__name__}"
            )
        given = sorted(k for k, v in grouping.items() if v is not None)
        if given:
            raise ValueError(f"{self.name} {self.how}, so optreg's {', '.join(given)} cannot apply")
        return self.upstream()(params, **kwargs)


_FUSED = "it updates each parameter inside optimizer.fused_backward(loss, lr), without groups"
lomo = TakesModel("lomo", "LOMO", _FUSED)
adalomo = TakesModel("adalomo", "AdaLOMO", _FUSED)
adammini = TakesModel(
    "adammini", "AdamMini", "it makes its own param groups from the parameters' names"
)
