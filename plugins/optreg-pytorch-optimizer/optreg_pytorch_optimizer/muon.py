"""pytorch_optimizer's Muon family by name, with the ``use_muon`` split made for you.

pytorch_optimizer's ``Muon``, ``MuonClip``, ``AdaMuon``, ``AdaGO``, ``NorMuon`` and
``DistributedMuon`` are one optimizer over two kinds of param group: ``use_muon=True``
groups take the orthogonalised update (``lr``, ``momentum``, ``weight_decay``), and
``use_muon=False`` groups take AdamW (``adamw_lr``, ``adamw_betas``, ``adamw_wd``). Every
group must carry the flag, so a plain ``Muon(model.parameters())`` raises. These
factories set it:

- a group that has ``use_muon`` (a dict you wrote, or an optreg rule that sets it) keeps
  it;
- from an ``nn.Module``, pytorch_optimizer's own rule (``prepare_muon_parameters``): the
  weights of ``nn.Linear``, ``nn.Conv1d``, ``nn.Conv2d`` and ``nn.LSTM`` modules with two
  or more dimensions, outside any module whose name holds ``head``, go to Muon; the rest
  (embeddings, norms, biases, heads) to AdamW;
- from tensors, ``(name, tensor)`` pairs or groups without the flag, by shape alone:
  2-D and larger to Muon.

The split is declared once, as `SIDES` on each factory's contract, and optreg makes it
(``optreg.group_sides``, as for its own ``muon_adamw``) before the factory is called,
running the ``optreg_prepare_optimizer`` hook on the flagged groups: optreg's no-decay
split, overrides and rules apply on both
sides; a side gets the no-decay split when it decays (``weight_decay`` for Muon,
``adamw_wd`` for AdamW), and a rule's ``lr_scale`` multiplies ``lr`` on the Muon side
and ``adamw_lr`` on the AdamW side. A param-group dict without the flag is split in two
by shape, with its options.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

import optreg
from optreg import FactoryContract
from optreg_pytorch_optimizer._routed import upstream

__all__ = [
    "MuonFamily",
    "SIDES",
    "adago",
    "adamuon",
    "distributedmuon",
    "muon",
    "muon_parameter_ids",
    "muonclip",
    "normuon",
]

_MATRIX_MODULES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.LSTM)


def muon_parameter_ids(model: nn.Module) -> set[int]:
    """The ids of ``model``'s parameters that pytorch_optimizer's
    ``prepare_muon_parameters`` gives to Muon (the others go to AdamW)."""
    ids: set[int] = set()
    for module_name, module in model.named_modules():
        if not isinstance(module, _MATRIX_MODULES):
            continue
        for name, param in module.named_parameters(recurse=False):
            full = f"{module_name}.{name}" if module_name else name
            if param.ndim >= 2 and "head" not in full:
                ids.add(id(param))
    return ids


def _route(
    params: Any, forced: Mapping[str, str], hyperparameters: Mapping[str, Any]
) -> tuple[dict[str, str], list[tuple[str, torch.Tensor]]]:
    """Where each parameter goes: a module by ``prepare_muon_parameters``' rule, pairs and
    tensors by shape (2-D and larger to Muon), a rule's ``use_muon`` over either."""
    del hyperparameters  # the route reads none
    if isinstance(params, nn.Module):
        named = [(n, p) for n, p in params.named_parameters() if p.requires_grad]
        to_muon = muon_parameter_ids(params)
    else:
        items = list(params)
        pairs = all(isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str) for x in items)
        named = [(str(x[0]), x[1]) if pairs else (f"params[{i}]", x) for i, x in enumerate(items)]
        named = [(n, p) for n, p in named if p.requires_grad]
        to_muon = {id(p) for _, p in named if p.ndim >= 2}
    routes = {n: "muon" if id(p) in to_muon else "adamw" for n, p in named}
    for name, side in forced.items():
        if side not in SIDES.values:
            raise ValueError(f"a rule sets use_muon={side!r} for {name!r}: True or False")
        routes[name] = side
    return routes, named


#: The family's sides: groups flagged ``use_muon``; AdamW's lr and weight decay are
#: ``adamw_lr`` / ``adamw_wd``; ``adamw_betas`` / ``adamw_eps`` are the class's own
#: keywords, not group options.
SIDES = optreg.Sides(
    key="use_muon",
    values=MappingProxyType({"muon": True, "adamw": False}),
    route=_route,
    lr=MappingProxyType({"adamw": "adamw_lr"}),
    weight_decay=MappingProxyType({"adamw": "adamw_wd"}),
    label="pytorch_optimizer's Muon family",
)


class MuonFamily:
    """The factory of one Muon-family class: ``(param groups, **kwargs) -> Optimizer``.

    Its contract declares `SIDES`, so ``optreg.get_optimizer`` routes, groups and flags
    the parameters (``optreg.group_sides``), runs the ``optreg_prepare_optimizer`` hook on
    the flagged groups and hands them here; the factory only builds the class.

    Args:
        attr: the class's name in ``pytorch_optimizer``.
    """

    #: a rule may send a parameter to either side (use_muon)
    optreg_contract = FactoryContract(group_options=("use_muon",), sides=SIDES)

    def __init__(self, attr: str) -> None:
        self.attr = attr
        self.__name__ = self.__qualname__ = attr
        self.__doc__ = (
            f"pytorch_optimizer.{attr} over param groups flagged use_muon as "
            "optreg_pytorch_optimizer.muon.SIDES routes them"
        )

    def upstream(self) -> type[torch.optim.Optimizer]:
        """The class (imports ``pytorch_optimizer``)."""
        return upstream(self.attr)

    @property
    def __signature__(self) -> inspect.Signature:
        """The class's own signature: optreg reads its keywords and defaults."""
        return inspect.signature(self.upstream())

    def __call__(self, params: Any, **kwargs: Any) -> torch.optim.Optimizer:
        """Build the class over ``params``: the flagged groups optreg made (kept as they
        are), or, called directly, anything ``optreg.group_sides`` takes, split the same way.

        Raises:
            TypeError / ValueError: what ``optreg.group_sides`` and the class raise.
        """
        defaults = self.__signature__.parameters
        hyperparameters = {
            k: kwargs.get(k, defaults[k].default)
            for k in ("lr", "weight_decay", "adamw_lr", "adamw_wd")
            if k in defaults or k in kwargs
        }
        groups = optreg.group_sides(params, SIDES, hyperparameters)
        return self.upstream()(groups, **kwargs)


adago = MuonFamily("AdaGO")
adamuon = MuonFamily("AdaMuon")
distributedmuon = MuonFamily("DistributedMuon")
muon = MuonFamily("Muon")
muonclip = MuonFamily("MuonClip")
normuon = MuonFamily("NorMuon")
