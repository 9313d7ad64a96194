"""optreg.clip_grad_norm_: clipping as the name's policy says."""

from __future__ import annotations

import copy

import pytest
import torch
from helpers import needs_muon
from torch import nn

import optreg


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(10, 8)
        self.hidden = nn.Linear(8, 8)
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(torch.tanh(self.hidden(self.embed(x)))))


def _backward(model: nn.Module, scale: float = 100.0) -> None:
    x = torch.arange(6).remainder(10)
    (model(x).pow(2).sum() * scale).backward()


def test_a_name_without_a_policy_clips_as_torch_bit_for_bit() -> None:
    model = Small()
    twin = copy.deepcopy(model)
    opt = optreg.get_optimizer("adamw", model, lr=1e-3, weight_decay=0.1)  # two groups
    _backward(model)
    _backward(twin)
    ours = optreg.clip_grad_norm_(opt, 1.0)
    order = [dict(twin.named_parameters())[n] for n in _names(model, opt)]
    theirs = torch.nn.utils.clip_grad_norm_(order, 1.0)
    assert torch.equal(ours, theirs) and ours > 1.0
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(p.grad, q.grad)  # type: ignore[arg-type]


def test_one_group_equals_torch_over_model_parameters() -> None:
    model, twin = Small(), Small()
    opt = optreg.get_optimizer("sgd", model.parameters(), lr=0.1)
    _backward(model)
    _backward(twin)
    assert torch.equal(
        optreg.clip_grad_norm_(opt, 0.5, norm_type=1.0, foreach=False),
        torch.nn.utils.clip_grad_norm_(twin.parameters(), 0.5, norm_type=1.0, foreach=False),
    )
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(p.grad, q.grad)  # type: ignore[arg-type]


def test_a_nonfinite_norm_raises_as_torch_does() -> None:
    model = Small()
    opt = optreg.get_optimizer("sgd", model, lr=0.1)
    _backward(model)
    model.hidden.weight.grad[0, 0] = float("nan")  # type: ignore[index]
    with pytest.raises(RuntimeError, match="is non-finite"):
        optreg.clip_grad_norm_(opt, 1.0, error_if_nonfinite=True)


@needs_muon
def test_muon_adamw_clips_its_adamw_side_only() -> None:
    """The Muon side's gradients (and so its update) are untouched; the AdamW side is
    clipped as torch clips those parameters alone."""
    model = Small()
    twin = copy.deepcopy(model)
    opt = optreg.get_optimizer("muon_adamw", model, lr=0.02, adamw_lr=1e-3)
    _backward(model)
    _backward(twin)
    norm = optreg.clip_grad_norm_(opt, 1.0)
    named = dict(twin.named_parameters())
    adamw = [named[n] for n, side in opt.routes.items() if side == "adamw"]
    adamw_in_group_order = [
        named[n]
        for g in opt.param_groups
        if g["optimizer"] == "adamw"
        for p in g["params"]
        for n, q in model.named_parameters()
        if q is p
    ]
    assert sorted(map(id, adamw)) == sorted(map(id, adamw_in_group_order))
    assert torch.equal(norm, torch.nn.utils.clip_grad_norm_(adamw_in_group_order, 1.0))
    for (name, p), q in zip(model.named_parameters(), twin.parameters(), strict=True):
        assert torch.equal(p.grad, q.grad), name  # type: ignore[arg-type]
    assert model.hidden.weight.grad.norm() > 1.0  # type: ignore[union-attr]  # Muon: not clipped
    assert optreg.optimizer_info("muon_adamw") is not None


def _names(model: nn.Module, opt: torch.optim.Optimizer) -> list[str]:
    by_id = {id(p): n for n, p in model.named_parameters()}
    return [by_id[id(p)] for g in opt.param_groups for p in g["params"]]
