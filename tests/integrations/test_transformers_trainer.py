"""The real transformers Trainer with optreg names: classes, arguments, resume.

Every available builtin optimizer runs through ``optimizer_cls_and_kwargs`` and through
``OptregTrainingArguments(optim=...)``, every schedule through ``lr_scheduler_type``;
each run checkpoints at step 10 of 20, resumes in a fresh Trainer and must match the
uninterrupted run exactly (parameters ``torch.equal``, every step's lrs ``==``).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import optreg
from optreg.testing import needs

transformers = pytest.importorskip("transformers")
from optreg.integrations.transformers import (  # noqa: E402  (after the importorskip)
    OptregTrainer,
    OptregTrainingArguments,
    optimizer_cls_and_kwargs,
)

STEPS, RESUME_AT = 20, 10


class _Data(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    def __init__(self, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, 50, (32, 8), generator=gen)
        self.labels = (self.ids.sum(dim=1) % 2).long()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def _model() -> Any:
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=2,
    )
    return transformers.BertForSequenceClassification(config)  # built from a config: no hub


class _Lrs(transformers.TrainerCallback):  # type: ignore[misc]
    """Every optimizer step's lrs, after the scheduler stepped."""

    def __init__(self) -> None:
        self.rows: dict[int, list[float]] = {}

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        groups = kwargs["optimizer"].param_groups
        self.rows[state.global_step] = [float(g["lr"]) for g in groups]


def _args(tmp_path: Path, **kwargs: Any) -> Any:
    kwargs.setdefault("learning_rate", 1e-3)
    return OptregTrainingArguments(
        output_dir=str(tmp_path),
        max_steps=STEPS,
        per_device_train_batch_size=8,
        report_to=[],
        use_cpu=True,
        save_strategy="steps",
        save_steps=RESUME_AT,
        logging_strategy="no",
        disable_tqdm=True,
        **kwargs,
    )


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # transformers' and torch's own notes
        yield


def _run(
    tmp_path: Path, trainer_kwargs: dict[str, Any], **args: Any
) -> tuple[dict[str, torch.Tensor], dict[int, list[float]], Any]:
    """Train 20 steps straight, then resume from step 10 in a fresh Trainer; both results."""
    results = []
    for resume in (None, tmp_path / f"checkpoint-{RESUME_AT}"):
        lrs = _Lrs()
        trainer = OptregTrainer(
            model=_model(),
            args=_args(tmp_path, **args),
            train_dataset=_Data(),
            eval_dataset=_Data(1),
            callbacks=[lrs],
            **trainer_kwargs,
        )
        trainer.train(resume_from_checkpoint=None if resume is None else str(resume))
        assert trainer.state.global_step == STEPS
        params = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
        results.append((params, lrs.rows, trainer))
    (straight, straight_lrs, _), (resumed, resumed_lrs, trainer) = results
    assert sorted(resumed_lrs) == list(range(RESUME_AT + 1, STEPS + 1))
    assert resumed_lrs == {step: straight_lrs[step] for step in resumed_lrs}
    for name, value in straight.items():
        assert torch.equal(resumed[name], value), name
    return straight, straight_lrs, trainer


def _inner(trainer: Any) -> torch.optim.Optimizer:
    return getattr(trainer.optimizer, "optimizer", trainer.optimizer)  # accelerate's wrapper


def _available_optimizers() -> list[Any]:
    out = []
    for name in optreg.list_optimizers():
        entry = optreg.optimizers.resolve(name)
        if entry.provider != "optreg":  # this env also installs plugins/ adapters
            continue
        need = needs(entry)
        if need.get("requires_closure"):
            reason = "steps only with a closure; the Trainer's step passes none"
        elif need.get("sparse_grad"):
            reason = "takes only sparse gradients; a BERT's dense ones are refused"
        elif need.get("matrices_only") and "adamw" not in name:
            reason = "takes only 2-D parameters; muon_adamw is the name for a whole model"
        elif not optreg.optimizers.info(name).available:
            reason = f"not installed here: {optreg.optimizers.info(name).reason}"
        else:
            out.append(name)
            continue
        out.append(pytest.param(name, marks=pytest.mark.skip(reason=reason)))
    return out


def _kwargs(name: str) -> dict[str, Any]:
    kwargs = dict(needs(optreg.optimizers.resolve(name)).get("kwargs", {}))
    if name == "adafactor":  # an lr to schedule, as transformers' `--optim adafactor`
        kwargs.update(lr=1e-3, relative_step=False, scale_parameter=False)
    return kwargs


@pytest.mark.parametrize("name", _available_optimizers())
def test_every_optimizer_class_through_optimizer_cls_and_kwargs(tmp_path: Path, name: str) -> None:
    kwargs = {"lr": 1e-3, **_kwargs(name)}
    cls = optreg.get_optimizer_cls(name)
    _, _, trainer = _run(tmp_path, {"optimizer_cls_and_kwargs": (cls, kwargs)})
    expected = type(optreg.get_optimizer(name, [torch.nn.Parameter(torch.zeros(2))], **kwargs))
    assert type(_inner(trainer)) is expected


@pytest.mark.parametrize("name", _available_optimizers())
def test_every_optimizer_name_through_the_arguments(tmp_path: Path, name: str) -> None:
    required = dict(needs(optreg.optimizers.resolve(name)).get("kwargs", {}))
    required.pop("route", None)  # the kit's bare tensors; the Trainer has names
    optim_args = ",".join(f"{k}={v}" for k, v in required.items())
    _, lrs, trainer = _run(
        tmp_path, {}, optim=name, optim_args=optim_args or None, weight_decay=0.01
    )
    inner = _inner(trainer)
    if name in _NATIVE:  # built by transformers, as a plain Trainer builds it
        cls, _ = transformers.Trainer.get_optimizer_cls_and_kwargs(trainer.args, trainer.model)
        assert isinstance(inner, cls)
    elif name == "muon_adamw":  # its own split by name, with the same no-decay rule
        assert [(g["optimizer"], g["weight_decay"]) for g in inner.param_groups] == [
            ("muon", 0.01),
            ("adamw", 0.01),
            ("adamw", 0.0),
        ]
        assert inner.routes["bert.embeddings.word_embeddings.weight"] == "adamw"
        assert inner.routes["classifier.weight"] == "adamw"
        assert inner.routes["bert.encoder.layer.0.attention.self.query.weight"] == "muon"
        return
    else:
        cls, kwargs = optimizer_cls_and_kwargs(name, trainer.args)
        expected = optreg.get_optimizer(name, [torch.nn.Parameter(torch.zeros(2))], **kwargs)
        assert type(inner) is type(expected)
    # the Trainer's no-decay split: decayed group first, biases and norm weights after
    assert [g["weight_decay"] for g in inner.param_groups] == [0.01, 0.0]
    assert lrs[1] == [1e-3 * (STEPS - 1) / STEPS] * 2  # linear, transformers' default


_NATIVE = {member.value for member in transformers.training_args.OptimizerNames}


def test_the_arguments_follow_the_trainer_conventions(tmp_path: Path) -> None:
    args = _args(
        tmp_path,
        optim="radam",
        learning_rate=3e-4,
        adam_beta1=0.8,
        adam_beta2=0.95,
        adam_epsilon=1e-6,
        optim_args="decoupled_weight_decay=true, foreach=false",
    )
    cls, kwargs = optimizer_cls_and_kwargs("radam", args)
    assert cls is optreg.optim.radam
    assert kwargs == {
        "lr": 3e-4,
        "betas": (0.8, 0.95),
        "eps": 1e-6,
        "decoupled_weight_decay": True,
        "foreach": False,
    }
    # adafactor's eps is a pair and its betas none: neither is touched
    cls, kwargs = optimizer_cls_and_kwargs("adafactor_torch", _args(tmp_path))
    assert kwargs == {"lr": 1e-3}
    # a third beta keeps the optimizer's default, as transformers does for AdEMAMix
    if optreg.optimizer_info("ademamix").available:
        _, kwargs = optimizer_cls_and_kwargs("optreg:ademamix", _args(tmp_path, adam_beta1=0.8))
        assert kwargs["betas"] == (0.8, 0.999, 0.9999)


@pytest.mark.parametrize(
    ("optim_args", "error", "match"),
    [
        ("decoupled_weight_decay", ValueError, r"optim_args items must be key=value, got "),
        ("decoupled_weight_decay=maybe", ValueError, r"decoupled_weight_decay='maybe' must be"),
        ("eps=tiny", ValueError, r"eps='tiny' must be a number like its default 1e-08"),
        ("foo=1", TypeError, r"unexpected keyword argument 'foo'"),
    ],
)
def test_bad_optim_args_name_the_item(
    tmp_path: Path, optim_args: str, error: type[Exception], match: str
) -> None:
    args = _args(tmp_path, optim="radam", optim_args=optim_args)
    with pytest.raises(error, match=match):
        optimizer_cls_and_kwargs("radam", args)


def test_target_modules_for_an_optimizer_without_them(tmp_path: Path) -> None:
    args = _args(tmp_path, optim="radam", optim_target_modules=["attn"])
    with pytest.raises(ValueError, match=r"optimizer 'radam' takes no target modules"):
        optimizer_cls_and_kwargs("radam", args)


def _schedules() -> list[str]:
    return [
        n for n in optreg.list_schedulers() if optreg.schedulers.resolve(n).provider == "optreg"
    ]


@pytest.mark.parametrize("name", _schedules())
def test_every_schedule_through_lr_scheduler_type(tmp_path: Path, name: str) -> None:
    entry = optreg.schedulers.resolve(name)
    need = needs(entry)
    args: dict[str, Any] = {"lr_scheduler_type": name, "warmup_steps": 0.2}
    kwargs = dict(need.get("kwargs", {}))
    trainer_kwargs: dict[str, Any] = {}
    if name == "adafactor":  # reports the lr Adafactor computes (relative_step=True)
        trainer_kwargs["optimizer_cls_and_kwargs"] = (optreg.optim.adafactor, {})
    if need.get("metric_driven"):
        args.update(eval_strategy="steps", eval_steps=5)
        kwargs.update(patience=0)
    if kwargs:
        args["lr_scheduler_kwargs"] = json.dumps(kwargs)  # as a command line gives it
    _, lrs, trainer = _run(tmp_path, trainer_kwargs, **args)
    scheduler = trainer.lr_scheduler
    assert type(scheduler).__module__.startswith("optreg.")
    if need.get("metric_driven"):  # stepped with eval_loss at steps 5, 10, 15, 20
        assert isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
        assert scheduler.last_epoch == STEPS // 5  # two evals restored, two after resuming
    elif name != "adafactor":
        expected = optreg.get_scheduler(
            name,
            torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3),
            num_warmup_steps=4,  # 0.2 of 20
            num_training_steps=STEPS,
            **kwargs,
        )
        for step in range(1, STEPS + 1):
            expected.optimizer.step()
            expected.step()
            assert lrs[step][0] == expected.get_last_lr()[0], step


def test_greedy_steps_with_the_eval_metric(tmp_path: Path) -> None:
    # eval_loss at steps 5, 10, 15 (and 20): 0.6964, 0.6992, 0.7, 0.7001. GreedyLR with
    # patience 0 doubles the lr after the first (better than inf), halves it after each
    # worse one; a Trainer that never stepped it with the metric would keep 1e-3.
    _, lrs, trainer = _run(
        tmp_path,
        {},
        lr_scheduler_type="greedy",
        eval_strategy="steps",
        eval_steps=5,
        lr_scheduler_kwargs={"patience": 0, "factor": 0.5, "min_lr": 1e-4},
    )
    expected = [1e-3] * 5 + [2e-3] * 5 + [1e-3] * 5 + [5e-4] * 5
    assert [lrs[step][0] for step in range(1, STEPS + 1)] == expected
    assert trainer.args.metric_for_best_model == "loss"


class _Plugins:
    """A plugin's metric-driven schedule that is not a ReduceLROnPlateau."""

    class Halving:
        def __init__(self, optimizer: torch.optim.Optimizer) -> None:
            self.optimizer = optimizer
            self.seen: list[float] = []

        def step(self, metrics: float) -> None:
            self.seen.append(float(metrics))
            for group in self.optimizer.param_groups:
                group["lr"] = group["lr"] / 2

        def state_dict(self) -> dict[str, Any]:
            return {"seen": list(self.seen)}

        def load_state_dict(self, state_dict: dict[str, Any]) -> None:
            self.seen = list(state_dict["seen"])


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "from-its-step"])
def test_a_plugins_metric_driven_schedule(
    tmp_path: Path, fresh_registry: None, declared: bool
) -> None:
    metadata = {"metric_driven": True} if declared else {}
    optreg.register_scheduler("halving", _Plugins.Halving, metadata=metadata)
    with pytest.raises(ValueError, match=r"'halving' is metric-driven: .* got eval_strategy='no'"):
        _args(tmp_path, lr_scheduler_type="halving")
    _, lrs, trainer = _run(
        tmp_path, {}, lr_scheduler_type="halving", eval_strategy="steps", eval_steps=5
    )
    # the lrs are read at each step's end, before that step's evaluation
    assert lrs[5] == [1e-3, 1e-3] and lrs[6] == [5e-4, 5e-4]  # halved by the step-5 eval
    assert lrs[STEPS] == [1e-3 / 8] * 2  # and by those of steps 10 and 15
    assert len(trainer.lr_scheduler.scheduler.seen) == 4  # every eval, resumed state kept


def test_metric_driven_needs_an_eval_strategy(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'greedy' is metric-driven: .* got eval_strategy='no'"):
        _args(tmp_path, lr_scheduler_type="greedy")


def test_command_line(tmp_path: Path) -> None:
    parser = transformers.HfArgumentParser(OptregTrainingArguments)
    (args,) = parser.parse_args_into_dataclasses(
        [
            "--output_dir",
            str(tmp_path),
            "--optim",
            "adam_8bit" if optreg.optimizer_info("adam_8bit").available else "nadam",
            "--lr_scheduler_type",
            "warmup_stable_decay",
            "--lr_scheduler_kwargs",
            '{"num_decay_steps": 5}',
            "--warmup_steps",
            "0.1",
        ]
    )
    assert args.lr_scheduler_type == "warmup_stable_decay"
    assert args.lr_scheduler_kwargs == {"num_decay_steps": 5}
    assert args.get_warmup_steps(20) == 2
    (args,) = parser.parse_args_into_dataclasses(
        [
            "--output_dir",
            str(tmp_path),
            "--optim",
            "optreg:nadam",
            "--lr_scheduler_type",
            "sequence",
        ]
    )
    assert args.optim == "optreg:nadam" and args.lr_scheduler_type == "sequence"


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--optim", "lionn_8bit"], r"unknown optimizer 'lionn_8bit'; did you mean 'lion_8bit'"),
        (["--lr_scheduler_type", "cosin"], r"unknown scheduler 'cosin'; did you mean 'cosine'"),
    ],
)
def test_an_unknown_name_fails_at_parsing(tmp_path: Path, argv: list[str], match: str) -> None:
    parser = transformers.HfArgumentParser(OptregTrainingArguments)
    with pytest.raises(optreg.UnknownNameError, match=match):
        parser.parse_args_into_dataclasses(["--output_dir", str(tmp_path), *argv])


def test_transformers_names_stay_transformers(tmp_path: Path) -> None:
    args = _args(tmp_path, optim="adafactor", learning_rate=1e-3)
    assert args.optim is transformers.training_args.OptimizerNames.ADAFACTOR
    cls, kwargs = OptregTrainer.get_optimizer_cls_and_kwargs(args)
    assert (cls, kwargs) == transformers.Trainer.get_optimizer_cls_and_kwargs(args)
    assert kwargs["relative_step"] is False and kwargs["lr"] == 1e-3  # the external lr
    args.set_optimizer("nadam", learning_rate=2e-3)
    assert args.optim == "nadam" and args.learning_rate == 2e-3
    args.set_lr_scheduler("sequence", max_steps=7)
    assert args.lr_scheduler_type == "sequence" and args.max_steps == 7
    args.set_lr_scheduler("cosine")
    assert args.lr_scheduler_type is transformers.trainer_utils.SchedulerType.COSINE
