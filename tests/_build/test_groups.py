"""optreg.explain_groups: the dry run, its rows and each classic-mistake warning."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import optreg
from optreg.cli._example import ExampleLM  # the model `optreg groups` explains

MUON = pytest.mark.skipif(not hasattr(torch.optim, "Muon"), reason="needs torch >= 2.9")


def test_rows_say_group_optimizer_lr_and_decay() -> None:
    report = optreg.explain_groups("adamw", ExampleLM(layers=1), lr=1e-3, weight_decay=0.1)
    assert rows_of(report, ("param", "group", "optimizer", "lr", "weight_decay"))[:4] == [
        ("embed.weight", 0, "adamw", 1e-3, 0.1),
        ("layers.0.norm1.weight", 1, "adamw", 1e-3, 0.0),
        ("layers.0.norm1.bias", 1, "adamw", 1e-3, 0.0),
        ("layers.0.attn.weight", 0, "adamw", 1e-3, 0.1),
    ]
    assert report.warnings == ()
    assert report.table().splitlines()[0].split() == [
        "parameter", "shape", "group", "optimizer", "lr", "weight_decay"
    ]  # fmt: skip
    assert report.to_json()["rows"][0] == {
        "param": "embed.weight",
        "shape": [64, 16],
        "group": 0,
        "optimizer": "adamw",
        "lr": 1e-3,
        "weight_decay": 0.1,
        "trainable": True,
    }


@MUON
def test_an_embedding_sent_to_muon_is_warned_about() -> None:
    report = optreg.explain_groups("muon_adamw", ExampleLM(layers=1), muon_params=["embed.weight"])
    assert report.warnings == (
        "embed.weight is an embedding and goes to the 'muon' side, which updates whole "
        "matrices (route it to 'adamw')",
    )
    assert rows_of(report, ("param", "optimizer"))[0] == ("embed.weight", "muon")


def test_a_decayed_norm_weight_and_bias_are_warned_about() -> None:
    model = ExampleLM(layers=1)
    report = optreg.explain_groups("adamw", model, weight_decay=0.1, no_decay=["attn.bias"])
    assert (
        "layers.0.norm1.weight is a norm weight and is decayed (weight_decay=0.1)"
        in report.warnings
    )
    assert "layers.0.mlp.bias is a bias and is decayed (weight_decay=0.1)" in report.warnings
    assert not any("attn.bias" in w for w in report.warnings)


def test_frozen_and_forgotten_parameters_are_warned_about() -> None:
    model = ExampleLM(layers=1)
    model.norm.weight.requires_grad_(False)
    named = [(n, p) for n, p in model.named_parameters() if not n.startswith("layers.0.mlp")]
    report = optreg.explain_groups("sgd", model, params=named, lr=0.1)
    assert report.warnings == (  # each once, in the model's order
        "layers.0.mlp.weight is trainable but in no group: it will not be updated",
        "layers.0.mlp.bias is trainable but in no group: it will not be updated",
        "norm.weight is frozen (requires_grad=False) but in group 0",
    )
    row = next(r for r in report.rows if r.param == "layers.0.mlp.weight")
    assert (row.group, row.optimizer, row.lr, row.trainable) == (None, None, None, True)
    # from the module itself, frozen parameters stay out: nothing to warn about
    assert optreg.explain_groups("sgd", model, lr=0.1).warnings == ()


def test_errors_are_get_optimizers() -> None:
    with pytest.raises(optreg.UnknownNameError, match="unknown optimizer 'adamx'; did you mean"):
        optreg.explain_groups("adamx", nn.Linear(2, 2))


def rows_of(report: optreg.GroupReport, fields: tuple[str, ...]) -> list[tuple[object, ...]]:
    """The report's rows as tuples of ``fields``."""
    return [tuple(getattr(r, f) for f in fields) for r in report.rows]
