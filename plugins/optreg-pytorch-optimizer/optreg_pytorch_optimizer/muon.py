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
no-decay split, overrides and rules apply on both sides: the no-decay parameters get
``weight_decay=0.0`` when either ``weight_decay`` or ``adamw_wd`` is set, and a rule's
``lr_scale`` multiplies ``lr`` on the Muon side and ``adamw_lr`` on the AdamW side.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import optreg
from optreg import FactoryContract
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


def _split(
    for_muon: list[dict[str, Any]], for_adamw: list[dict[str, Any]], muon_ids: set[int] | None
) -> list[dict[str, Any]]:
    """Flag and split each group. ``for_muon`` and ``for_adamw`` are the same groups made
    with Muon's and AdamW's lr as the base a rule's ``lr_scale`` multiplies."""
    out: list[dict[str, Any]] = []
    for muon_group, adamw_group in zip(for_muon, for_adamw, strict=True):
        if "use_muon" in muon_group:  # a dict or a rule said which
            out.append(muon_group if muon_group["use_muon"] else adamw_group)
            continue
        params = list(muon_group["params"])
        is_muon = [(id(p) in muon_ids) if muon_ids is not None else p.ndim >= 2 for p in params]
        for flag, group in ((True, muon_group), (False, adamw_group)):
            part = [p for p, m in zip(params, is_muon, strict=True) if m is flag]
            if part:
                out.append({**group, "params": part, "use_muon": flag})
    return out


class MuonFamily(Routed):
    """The factory of one Muon-family class: ``(params, **kwargs) -> Optimizer``.

    ``optreg.get_optimizer`` hands it the model itself (its ``optreg_contract``) with
    the grouping options, so it can route by module type and name.

    Args:
        attr: the class's name in ``pytorch_optimizer``.
    """

    #: a rule may send a parameter to either side
    optreg_contract = FactoryContract(routes_params=True, group_options=("use_muon",))
    makes_groups = True

    def __init__(self, attr: str) -> None:
        super().__init__(
            attr,
            f"pytorch_optimizer.{attr} over param groups flagged use_muon by "
            "optreg_pytorch_optimizer.muon (see that module)",
        )

    def build(
        self, params: Any, grouping: dict[str, Any], kwargs: dict[str, Any]
    ) -> torch.optim.Optimizer:
        """Group as ``optreg.get_optimizer`` does, then flag and split each group, and run
        optreg's ``optreg_prepare_optimizer`` hook on the flagged groups.

        Raises:
            ValueError / TypeError: what ``optreg.group_parameters`` and the class raise.
        """
        defaults = self.__signature__.parameters  # the class's keywords and defaults
        prepare = grouping.pop("optreg_prepare", None)

        def given(key: str) -> Any:
            return kwargs.get(key, defaults[key].default if key in defaults else None)

        if not isinstance(params, (nn.Module, torch.Tensor)):
            params = list(params)  # grouped twice
        muon_ids = muon_parameter_ids(params) if isinstance(params, nn.Module) else None
        # the no-decay split is made when either side decays; the same groups twice, with
        # each side's lr as the base of a rule's lr_scale
        decay = max(given("weight_decay") or 0.0, given("adamw_wd") or 0.0)
        for_muon, for_adamw = (
            optreg.group_parameters(params, weight_decay=decay, lr=given(lr), **grouping)
            for lr in ("lr", "adamw_lr")
        )
        groups = _split(for_muon, for_adamw, muon_ids)
        if prepare is not None:
            prepare(groups, kwargs)  # each group flagged use_muon, as the class reads it
        return self.upstream()(groups, **kwargs)


adago = MuonFamily("AdaGO")
adamuon = MuonFamily("AdaMuon")
distributedmuon = MuonFamily("DistributedMuon")
muon = MuonFamily("Muon")
muonclip = MuonFamily("MuonClip")
normuon = MuonFamily("NorMuon")
