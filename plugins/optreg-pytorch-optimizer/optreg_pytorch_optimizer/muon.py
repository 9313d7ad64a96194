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

A group that holds both kinds is split in two with the same options, so optreg's
no-decay split, overrides and rules apply on both sides.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import optreg
from optreg_pytorch_optimizer._routed import Routed

__all__ = [
    "MuonFamily",
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


def _split(groups: list[dict[str, Any]], muon_ids: set[int] | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for group in groups:
        if "use_muon" in group:
            out.append(group)
            continue
        params = list(group["params"])
        is_muon = [(id(p) in muon_ids) if muon_ids is not None else p.ndim >= 2 for p in params]
        for flag in (True, False):
            part = [p for p, m in zip(params, is_muon, strict=True) if m is flag]
            if part:
                out.append({**group, "params": part, "use_muon": flag})
    return out


class MuonFamily(Routed):
    """The factory of one Muon-family class: ``(params, **kwargs) -> Optimizer``.

    ``optreg.get_optimizer`` hands it the model itself (``optreg_routes_params``) with
    the grouping options, so it can route by module type and name.

    Args:
        attr: the class's name in ``pytorch_optimizer``.
    """

    optreg_group_options = ("use_muon",)  # a rule may send a parameter to either side

    def __init__(self, attr: str) -> None:
        super().__init__(
            attr,
            f"pytorch_optimizer.{attr} over param groups flagged use_muon by "
            "optreg_pytorch_optimizer.muon (see that module)",
        )

    def build(
        self, params: Any, grouping: dict[str, Any], kwargs: dict[str, Any]
    ) -> torch.optim.Optimizer:
        """Group as ``optreg.get_optimizer`` does, then flag and split each group.

        Raises:
            ValueError / TypeError: what ``optreg.group_parameters`` and the class raise.
        """
        muon_ids = muon_parameter_ids(params) if isinstance(params, nn.Module) else None
        groups = optreg.group_parameters(
            params, weight_decay=kwargs.get("weight_decay"), lr=kwargs.get("lr"), **grouping
        )
        return self.upstream()(_split(groups, muon_ids), **kwargs)


adago = MuonFamily("AdaGO")
adamuon = MuonFamily("AdaMuon")
distributedmuon = MuonFamily("DistributedMuon")
muon = MuonFamily("Muon")
muonclip = MuonFamily("MuonClip")
normuon = MuonFamily("NorMuon")
