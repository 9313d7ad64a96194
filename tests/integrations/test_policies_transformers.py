"""The name's policies under the real transformers Trainer: a schedule-free optimizer
saves its eval-mode weights, and ``max_grad_norm`` leaves muon_adamw's Muon side alone."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import optreg

transformers = pytest.importorskip("transformers")
from optreg.integrations.transformers import (  # noqa: E402  (after the importorskip)
    OptregTrainer,
    OptregTrainingArguments,
)


class Regressor(nn.Module):
    """A hidden matrix, a norm and a head: both sides of muon_adamw."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.hidden = nn.Linear(8, 16)
        self.norm = nn.LayerNorm(16)
        self.head = nn.Linear(16, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.head(self.norm(torch.tanh(self.hidden(x)))).squeeze(-1)
        return {"loss": 100.0 * (out - labels).pow(2).mean(), "logits": out}


class _Data(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    def __init__(self) -> None:
        gen = torch.Generator().manual_seed(0)
        self.x, self.y = torch.randn(24, 8, generator=gen), torch.randn(24, generator=gen)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "labels": self.y[i]}


def _args(tmp_path: Path, **kwargs: Any) -> Any:
    return OptregTrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        per_device_eval_batch_size=24,
        report_to=[],
        use_cpu=True,
        **kwargs,
    )


class _EvalWeights(transformers.TrainerCallback):  # type: ignore[misc]
    """The schedule-free package's procedure, on a copy at each step's end: optimizer.eval()
    gives the weights to evaluate and save; and the weights evaluation actually saw."""

    def __init__(self) -> None:
        self.expected: dict[int, list[torch.Tensor]] = {}
        self.train_point: dict[int, list[torch.Tensor]] = {}
        self.seen: dict[int, list[torch.Tensor]] = {}

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        model, optimizer = kwargs["model"], optreg_optimizer(kwargs["optimizer"])
        self.train_point[state.global_step] = [p.detach().clone() for p in model.parameters()]
        twin_model, twin_opt = copy.deepcopy((model, optimizer))
        twin_opt.eval()  # schedulefree's documented step before evaluating or saving
        self.expected[state.global_step] = [p.detach().clone() for p in twin_model.parameters()]

    def on_prediction_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.seen[state.global_step] = [p.detach().clone() for p in kwargs["model"].parameters()]


def optreg_optimizer(optimizer: Any) -> Any:
    return getattr(optimizer, "optimizer", optimizer)  # accelerate's wrapper


def test_a_schedule_free_name_evaluates_and_saves_its_eval_mode_weights(tmp_path: Path) -> None:
    pytest.importorskip("schedulefree")
    assert optreg.optimizer_info("schedule_free_adamw").traits.train_eval
    weights = _EvalWeights()
    args = _args(
        tmp_path,
        optim="schedule_free_adamw",
        lr_scheduler_type="constant",
        learning_rate=1e-2,
        max_steps=6,
        eval_strategy="steps",
        eval_steps=3,
        save_strategy="steps",
        save_steps=4,  # a save with no evaluation before it: the optimizer is training
    )
    trainer = OptregTrainer(
        model=Regressor(), args=args, train_dataset=_Data(), eval_dataset=_Data(),
        callbacks=[weights],
    )  # fmt: skip
    trainer.train()
    for step in (3, 6):  # evaluation ran on the eval-mode weights
        assert all(map(torch.equal, weights.seen[step], weights.expected[step])), step
    from safetensors.torch import load_file

    saved = load_file(str(tmp_path / "checkpoint-4" / "model.safetensors"))
    names = [n for n, _ in Regressor().named_parameters()]
    assert sorted(saved) == sorted(names)
    for name, expected in zip(names, weights.expected[4], strict=True):
        assert torch.equal(saved[name], expected), name
    # and that is not the training point (the test would pass by accident otherwise)
    assert not all(map(torch.equal, weights.train_point[4], weights.expected[4]))
    assert (
        optreg_optimizer(trainer.optimizer).param_groups[0]["train_mode"] is False
    )  # evaluated last


class _Grads(transformers.TrainerCallback):  # type: ignore[misc]
    """Each parameter's gradient as backward left it, and as the optimizer steps with it."""

    def __init__(self, model: nn.Module) -> None:
        self.raw: dict[str, torch.Tensor] = {}
        self.stepped: dict[str, torch.Tensor] = {}
        for name, p in model.named_parameters():
            p.register_post_accumulate_grad_hook(
                lambda t, name=name: self.raw.__setitem__(name, t.grad.detach().clone())  # type: ignore[union-attr]
            )
        self.names = {id(p): n for n, p in model.named_parameters()}

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        for p in kwargs["model"].parameters():
            self.stepped[self.names[id(p)]] = p.grad.detach().clone()


def test_max_grad_norm_leaves_muon_adamws_muon_side_unclipped(tmp_path: Path) -> None:
    if not optreg.optimizers.status(optreg.optimizers["muon"])[0]:
        pytest.skip("needs torch.optim.Muon (torch >= 2.9)")
    model = Regressor()
    grads = _Grads(model)
    args = _args(tmp_path, optim="muon_adamw", learning_rate=0.02, max_steps=1, max_grad_norm=1.0)
    trainer = OptregTrainer(model=model, args=args, train_dataset=_Data(), callbacks=[grads])
    trainer.train()
    opt = optreg_optimizer(trainer.optimizer)
    assert opt.routes["hidden.weight"] == "muon"
    muon = [n for n, side in opt.routes.items() if side == "muon"]
    adamw = [
        grads.names[id(p)]
        for g in opt.param_groups
        if g["optimizer"] == "adamw"
        for p in g["params"]
    ]
    for name in muon:  # the Muon side's gradient, so its update, as if unclipped
        assert torch.equal(grads.stepped[name], grads.raw[name]), name
    alone = [grads.raw[n].clone() for n in adamw]
    norm = torch.nn.utils.clip_grad_norm_([nn.Parameter(torch.zeros_like(g)) for g in alone], 1.0)
    assert norm == 0  # (a shape check of the call below)
    params = [nn.Parameter(torch.zeros_like(g)) for g in alone]
    for p, g in zip(params, alone, strict=True):
        p.grad = g
    total = torch.nn.utils.clip_grad_norm_(params, 1.0)
    assert total > 1.0  # clipping did something
    for name, p in zip(adamw, params, strict=True):  # the AdamW side as torch clips it alone
        assert torch.equal(grads.stepped[name], p.grad), name


class _Decay(transformers.TrainerCallback):  # type: ignore[misc]
    def __init__(self) -> None:
        self.rows: dict[int, list[float]] = {}

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        groups = kwargs["optimizer"].param_groups
        self.rows[state.global_step] = [float(g["weight_decay"]) for g in groups]


def _decay_run(tmp_path: Path, resume_from: Path | None) -> tuple[nn.Module, _Decay]:
    model, decay = Regressor(), _Decay()
    args = _args(
        tmp_path,
        optim="adamw",
        learning_rate=1e-2,
        weight_decay=0.1,
        lr_scheduler_type="cosine",
        weight_decay_scheduler_type="cosine",
        warmup_steps=2,
        max_steps=12,
        save_strategy="steps",
        save_steps=6,
    )
    trainer = OptregTrainer(model=model, args=args, train_dataset=_Data(), callbacks=[decay])
    trainer.train(resume_from_checkpoint=None if resume_from is None else str(resume_from))
    return model, decay


def test_a_weight_decay_schedule_beside_the_lr_schedule_resumes_exactly(tmp_path: Path) -> None:
    import math

    whole, decay = _decay_run(tmp_path / "whole", None)
    for step in range(1, 13):
        expected = step / 2 if step < 2 else 0.5 * (1 + math.cos(math.pi * (step - 2) / 10))
        assert decay.rows[step][0] == pytest.approx(0.1 * expected, rel=1e-12), step
        assert decay.rows[step][1] == 0.0  # the no-decay group stays at 0
    resumed, again = _decay_run(tmp_path / "resumed", tmp_path / "whole" / "checkpoint-6")
    assert sorted(again.rows) == list(range(7, 13))
    assert all(again.rows[s] == decay.rows[s] for s in range(7, 13))
    for p, q in zip(whole.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)


def test_a_schedules_missing_argument_says_lr_scheduler_kwargs(tmp_path: Path) -> None:
    args = _args(tmp_path, lr_scheduler_type="warmup_stable_decay", max_steps=2)
    trainer = OptregTrainer(model=Regressor(), args=args, train_dataset=_Data())
    with pytest.raises(ValueError) as info:
        trainer.train()
    assert str(info.value) == (
        "warmup_stable_decay requires `num_decay_steps`, please provide that argument. Under "
        "the Trainer, a schedule's own arguments go in lr_scheduler_kwargs: "
        "OptregTrainingArguments(lr_scheduler_type='warmup_stable_decay', "
        "lr_scheduler_kwargs={'num_decay_steps': ...}) or --lr_scheduler_kwargs "
        "'{\"num_decay_steps\": ...}'"
    )


def test_a_plain_trainer_with_an_optreg_name_points_at_optregtrainer(tmp_path: Path) -> None:
    args = _args(tmp_path, optim="muon_adamw", max_steps=1)
    assert args.optim == "muon_adamw" and str(args.optim) == "muon_adamw"
    assert args.to_dict()["optim"] == "muon_adamw"
    trainer = transformers.Trainer(model=Regressor(), args=args, train_dataset=_Data())
    with pytest.raises(ValueError) as info:
        trainer.create_optimizer()
    assert str(info.value) == (
        "Trainer cannot instantiate unsupported optimizer: muon_adamw (an optreg name: train "
        "with optreg.integrations.transformers.OptregTrainer, or give this Trainer "
        "optimizer_cls_and_kwargs=optimizer_cls_and_kwargs('muon_adamw', args, model))"
    )
