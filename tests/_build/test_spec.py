"""optreg._build.spec: one spec is what build takes, what the record stores and what the
command line's --config builds from."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import torch
from helpers import Net

import optreg
from optreg._build.spec import OptimizerSpec, ScheduleSpec, Spec  # the module under test
from optreg.cli import main

pytestmark = pytest.mark.usefixtures("fresh_registry")


class Layered(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)
        self.layers = torch.nn.ModuleList(torch.nn.Linear(4, 4) for _ in range(3))

CONFIG: dict[str, Any] = {
    "optimizer": {
        "name": "adamw",
        "lr": 3e-4,
        "weight_decay": 0.1,
        "no_decay": ["bias"],
        "rules": [{"match": "embed", "lr": 1e-4}, {"match": "*.weight", "ndim": 2, "lr_scale": 0.5}],
        "layer_decay": 0.5,
    },
    "scheduler": {"name": "cosine", "num_warmup_steps": 2, "num_cycles": 0.25},
    "num_training_steps": 20,
}


def test_a_config_is_read_once_into_one_spec() -> None:
    spec = Spec.from_config(CONFIG)
    assert spec == Spec(
        OptimizerSpec(
            "adamw",
            {"lr": 3e-4, "weight_decay": 0.1},
            {
                "no_decay": ["bias"],
                "rules": [
                    {"match": "embed", "lr": 1e-4},
                    {"match": "*.weight", "ndim": 2, "lr_scale": 0.5},
                ],
                "layer_decay": 0.5,
            },
        ),
        ScheduleSpec("cosine", 2, 20, {"num_cycles": 0.25}),
        20,
    )
    assert Spec.from_config({"optimizer": "sgd"}) == Spec(OptimizerSpec("sgd"))


def test_the_record_stores_the_spec_build_took() -> None:
    """build(spec) -> state_dict -> the record's spec is the same spec (no field lost)."""
    spec = Spec.from_config(CONFIG)
    optimizer, scheduler = spec.build(Layered())
    record = optreg.state_dict(optimizer, scheduler)
    again = Spec.from_record(record)
    # the record names the provider too, so a resume rebuilds from the same one
    assert again.optimizer == replace(spec.optimizer, name="optreg:adamw")
    assert again.scheduler == replace(spec.scheduler, name="optreg:cosine")


def test_from_state_dict_rebuilds_the_groups_the_spec_made() -> None:
    torch.manual_seed(0)
    model = Layered()
    optimizer, scheduler = optreg.build(model, CONFIG)
    rebuilt, rebuilt_sched = optreg.from_state_dict(optreg.state_dict(optimizer, scheduler), model)
    assert [(g["lr"], g["weight_decay"], len(g["params"])) for g in rebuilt.param_groups] == [
        (g["lr"], g["weight_decay"], len(g["params"])) for g in optimizer.param_groups
    ]
    assert rebuilt_sched.state_dict() == scheduler.state_dict()


def test_a_spec_without_an_optimizer_builds_nothing() -> None:
    spec = Spec.from_config({"scheduler": "constant"})
    assert spec.optimizer is None and spec.scheduler == ScheduleSpec("constant")
    with pytest.raises(ValueError, match="config needs an 'optimizer' section"):
        spec.build(Net())


def test_the_command_line_reads_a_config_as_build_does(
    capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    """An unknown key is the same error from `optreg plot --config` as from build()."""
    pytest.importorskip("matplotlib")
    bad = '{"schedular": "cosine", "num_training_steps": 10}'
    with pytest.raises(ValueError, match="did you mean 'scheduler'") as info:
        optreg.build(Net(), bad)
    code = main(["plot", "--config", bad, "-o", str(tmp_path / "p.png")])
    assert code == 2
    assert capsys.readouterr().err.startswith(f"optreg plot: error: --config: {info.value}")
