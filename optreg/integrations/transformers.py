"""Every optreg name in the transformers Trainer, from Python or a command line.

Importing this module imports transformers (``import optreg`` does not).

>>> from optreg.integrations.transformers import OptregTrainer, OptregTrainingArguments
>>> args = OptregTrainingArguments(output_dir="out", optim="lion_8bit",
...                                lr_scheduler_type="warmup_stable_decay",
...                                lr_scheduler_kwargs={"num_decay_steps": 100})
>>> trainer = OptregTrainer(model=model, args=args, train_dataset=data)  # doctest: +SKIP

* `OptregTrainingArguments` is a ``TrainingArguments`` whose ``optim`` and
  ``lr_scheduler_type`` take any optreg name, plain or ``dist:name``, as well as every
  name transformers has; through ``HfArgumentParser`` that is ``--optim lion_8bit``. An
  unknown name fails when the arguments are built, with optreg's did-you-mean error.
* `OptregTrainer` (or `OptregTrainerMixin` in front of another Trainer
  class) builds those names with the Trainer's conventions: see
  `optimizer_cls_and_kwargs()`. Names transformers has itself (``adamw_torch``,
  ``adafactor``, ``adamw_8bit``, ...) are built by transformers, exactly as
  ``transformers.Trainer`` builds them. Every schedule is optreg's, which equals
  transformers' own at every step for the names both have; metric-driven ones
  (``reduce_lr_on_plateau``, ``greedy``, a plugin's) are stepped with the evaluation
  metric ``metric_for_best_model``, as transformers steps its own.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import json
from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any

import torch
import transformers
from torch.optim.lr_scheduler import ReduceLROnPlateau
from transformers.trainer_utils import SchedulerType
from transformers.training_args import OptimizerNames

from optreg._build.api import get_scheduler, is_metric_driven
from optreg._core import loading, signature, validate
from optreg._core.registry import optimizers, schedulers
from optreg._policies.clip import clip_policy, clipped_parameters
from optreg._policies.modes import eval_mode, unwrap_optimizer
from optreg.optim import get_optimizer_cls

__all__ = [
    "OptregTrainer",
    "OptregTrainerMixin",
    "OptregTrainingArguments",
    "optimizer_cls_and_kwargs",
]

_TRANSFORMERS_OPTIMIZERS = frozenset(member.value for member in OptimizerNames)
_TRANSFORMERS_SCHEDULES = frozenset(member.value for member in SchedulerType)


def _plain(value: object) -> object:
    """An enum member's value (``OptimizerNames.ADAFACTOR`` -> ``"adafactor"``)."""
    return getattr(value, "value", value)


def _optimizer_name(value: object) -> str:
    """``value`` if transformers or optreg knows it as an optimizer.

    Raises:
        TypeError: not a str.
        UnknownNameError: neither knows it (with optreg's close matches).
    """
    name = _plain(value)
    if not isinstance(name, str):
        raise TypeError(f"`optim` must be an optimizer name (a str), got {name!r}")
    if name not in _TRANSFORMERS_OPTIMIZERS:
        optimizers.resolve(name)
    return name


def _scheduler_name(value: object, kwargs: object = None) -> tuple[str, bool]:
    """``(value, metric-driven?)`` for a scheduler optreg knows (with its
    ``lr_scheduler_kwargs``, as it will be built).

    Raises:
        TypeError: not a str.
        UnknownNameError: optreg has no such schedule (every transformers one it has).
    """
    name = _plain(value)
    if not isinstance(name, str):
        raise TypeError(f"`lr_scheduler_type` must be a scheduler name (a str), got {name!r}")
    schedulers.resolve(name)
    if isinstance(kwargs, str):  # TrainingArguments takes its JSON text too
        with contextlib.suppress(ValueError):
            kwargs = json.loads(kwargs)
    return name, is_metric_driven(name)


@dataclasses.dataclass
class OptregTrainingArguments(transformers.TrainingArguments):
    """``TrainingArguments`` whose ``optim`` and ``lr_scheduler_type`` take optreg names.

    Everything else is ``TrainingArguments``' own. After construction ``optim`` is an
    ``OptimizerNames`` member for a name transformers has and the name (a str) for any
    other; ``lr_scheduler_type`` likewise with ``SchedulerType``. A metric-driven
    schedule gets what transformers gives ``reduce_lr_on_plateau``: it needs an eval
    strategy, and ``metric_for_best_model`` defaults to ``"loss"``.

    Raises:
        UnknownNameError: ``optim`` or ``lr_scheduler_type`` is a name nobody provides.
        ValueError: a metric-driven schedule with ``eval_strategy="no"`` (and every
            error ``TrainingArguments`` raises).
    """

    optim: str = dataclasses.field(  # type: ignore[assignment]
        default=transformers.TrainingArguments.default_optim,
        metadata={
            "help": "The optimizer: any name of `optreg list optimizers` (plain or dist:name) "
            "or of transformers' OptimizerNames."
        },
    )
    lr_scheduler_type: str = dataclasses.field(  # type: ignore[assignment]
        default="linear",
        metadata={
            "help": "The learning rate schedule: any name of `optreg list schedulers` "
            "(plain or dist:name); its own arguments go in --lr_scheduler_kwargs."
        },
    )
    weight_decay_scheduler_type: str | None = dataclasses.field(
        default=None,
        metadata={
            "help": "A schedule for weight_decay (any name of `optreg list schedulers`), "
            "with the lr schedule's warmup and length; its own arguments go in "
            "--weight_decay_scheduler_kwargs."
        },
    )
    weight_decay_scheduler_kwargs: dict[str, Any] | str | None = dataclasses.field(
        default=None,
        metadata={"help": "The weight-decay schedule's own arguments (a dict or its JSON)."},
    )

    def __post_init__(self) -> None:
        if self.weight_decay_scheduler_type is not None:
            schedulers.resolve(str(self.weight_decay_scheduler_type))  # an unknown name, now
        if isinstance(self.weight_decay_scheduler_kwargs, str):
            self.weight_decay_scheduler_kwargs = json.loads(self.weight_decay_scheduler_kwargs)
        optim = _optimizer_name(self.optim)
        schedule, metric_driven = _scheduler_name(self.lr_scheduler_type, self.lr_scheduler_kwargs)
        if metric_driven and _plain(self.eval_strategy) == "no":
            raise ValueError(
                f"lr_scheduler_type {schedule!r} is metric-driven: it steps with the "
                "evaluation metric `metric_for_best_model` (default 'loss'), so it needs "
                "an eval strategy (eval_strategy='steps' or 'epoch'), got eval_strategy='no'"
            )
        # TrainingArguments' own checks see a name of theirs with the same needs.
        self.optim = optim if optim in _TRANSFORMERS_OPTIMIZERS else OptimizerNames.ADAMW_TORCH
        if schedule in _TRANSFORMERS_SCHEDULES:
            self.lr_scheduler_type = schedule
        elif metric_driven:
            self.lr_scheduler_type = SchedulerType.REDUCE_ON_PLATEAU
        else:
            self.lr_scheduler_type = SchedulerType.LINEAR
        super().__post_init__()
        self.optim = OptimizerNames(optim) if optim in _TRANSFORMERS_OPTIMIZERS else _Name(optim)
        if schedule in _TRANSFORMERS_SCHEDULES:
            self.lr_scheduler_type = SchedulerType(schedule)
        else:
            self.lr_scheduler_type = schedule

    def set_optimizer(self, name: Any = "adamw_torch", *args: Any, **kwargs: Any) -> Any:
        """``TrainingArguments.set_optimizer`` taking any optreg name too.

        Raises:
            UnknownNameError: nobody provides ``name``.
        """
        optim = _optimizer_name(name)
        native = optim in _TRANSFORMERS_OPTIMIZERS
        super().set_optimizer(optim if native else "adamw_torch", *args, **kwargs)
        if not native:
            self.optim = _Name(optim)
        return self

    def set_lr_scheduler(self, name: Any = "linear", *args: Any, **kwargs: Any) -> Any:
        """``TrainingArguments.set_lr_scheduler`` taking any optreg name too.

        Raises:
            UnknownNameError: optreg has no schedule ``name``.
        """
        schedule, _ = _scheduler_name(name)
        native = schedule in _TRANSFORMERS_SCHEDULES
        super().set_lr_scheduler(schedule if native else "linear", *args, **kwargs)
        if not native:
            self.lr_scheduler_type = schedule
        return self


class _Name(str):
    """An optreg optimizer name in ``TrainingArguments.optim``: the str itself everywhere
    (equality, hashing, ``str()``, ``repr()``, JSON), and in a formatted message a pointer
    to what builds it, for the one place that formats it: a plain ``transformers.Trainer``
    saying it "cannot instantiate unsupported optimizer"."""

    def __format__(self, spec: str) -> str:
        name = str(self)
        if spec:
            return format(name, spec)
        return (
            f"{name} (an optreg name: train with optreg.integrations.transformers."
            f"OptregTrainer, or give this Trainer optimizer_cls_and_kwargs="
            f"optimizer_cls_and_kwargs({name!r}, args, model))"
        )


def optimizer_cls_and_kwargs(
    name: str, args: transformers.TrainingArguments, model: Any = None
) -> tuple[type[torch.optim.Optimizer], dict[str, Any]]:
    """The class and keywords the Trainer builds optreg's ``name`` from, by its conventions.

    The class is [optreg.get_optimizer_cls][]'s. The keywords: ``lr`` from
    ``learning_rate``; ``betas`` from ``adam_beta1`` / ``adam_beta2`` where the optimizer
    takes a tuple of betas (a third or later beta keeps the optimizer's default, as
    transformers does for AdEMAMix); ``eps`` from ``adam_epsilon`` where the optimizer's
    ``eps`` is one number; then ``optim_args`` (``"key=value,key=value"``), each value read
    as the type of the optimizer's default; ``optim_target_modules`` as ``target_modules``
    for an optimizer that takes it. The Trainer puts ``weight_decay`` on its param groups
    (0 for biases and norm weights). The result also fits
    ``Trainer(optimizer_cls_and_kwargs=...)`` of a plain Trainer.

    An optimizer that splits the parameters itself (``muon_adamw``: by name and module
    type) gets ``model`` itself as ``params`` (the Trainer then passes it instead of its
    groups), ``weight_decay`` for both sides, and the Adam arguments as
    its ``adamw_betas`` / ``adamw_eps``.

    Raises:
        UnknownNameError: no optimizer has that name.
        MissingDependencyError: the name needs an extra that is not installed.
        ValueError: an ``optim_args`` item that is not ``key=value`` or whose value is
            not of the default's type, or ``optim_target_modules`` for an optimizer
            that takes no target modules.
        TypeError: an ``optim_args`` key the optimizer does not take.
    """
    entry = optimizers.resolve(name)
    factory = optimizers.load(entry)
    label = f"optimizer {entry.name!r}"
    kwargs: dict[str, Any] = {}
    contract = loading.contract(entry)
    routes = contract.routes_params
    # a composite's Adam side's arguments (Muon has an eps too)
    adam = "adamw_" if routes or contract.sides is not None else ""
    if routes:
        if model is None:
            raise ValueError(
                f"{label} splits the parameters by name: pass the model, "
                "optimizer_cls_and_kwargs(name, args, model)"
            )
        kwargs["params"] = model  # the module: its module types count, not only its names
        kwargs["weight_decay"] = kwargs["adamw_weight_decay"] = args.weight_decay
    if signature.takes(factory, "lr"):
        kwargs["lr"] = args.learning_rate
    betas = signature.default(factory, f"{adam}betas")
    if isinstance(betas, tuple) and len(betas) >= 2 and all(map(validate.is_real, betas)):
        kwargs[f"{adam}betas"] = (args.adam_beta1, args.adam_beta2, *betas[2:])
    if validate.is_real(signature.default(factory, f"{adam}eps")):
        kwargs[f"{adam}eps"] = args.adam_epsilon
    given = _optim_args(label, factory, args.optim_args)
    signature.check_keywords(f"{label} optim_args", factory, given)
    kwargs.update(given)
    if args.optim_target_modules is not None:
        if signature.takes(factory, "target_modules") != "named":
            raise ValueError(
                f"optim_target_modules={args.optim_target_modules!r}: {label} takes no "
                "target modules (transformers uses them for GaLore and APOLLO)"
            )
        kwargs["target_modules"] = args.optim_target_modules
    return get_optimizer_cls(name), kwargs


def _optim_args(label: str, factory: Any, text: str | None) -> dict[str, Any]:
    """``"a=1,b=true"`` as keywords, each read as the type of the factory's default.

    Raises:
        ValueError: an item without ``=``, or a value not of its default's type.
    """
    out: dict[str, Any] = {}
    for item in (text or "").replace(" ", "").split(","):
        if not item:
            continue
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{label}: optim_args items must be key=value, got {item!r}")
        out[key] = _read(label, key, raw, signature.default(factory, key))
    return out


def _read(label: str, key: str, raw: str, default: object) -> Any:
    """``raw`` as the type of ``default``; a literal (true / false / none in any case
    too) when the default says nothing, else the text itself."""
    where = f"{label}: optim_args {key}={raw!r}"
    words = {"true": True, "false": False, "none": None}
    if isinstance(default, bool):
        value = {"1": True, "0": False}.get(raw, words.get(raw.lower()))
        if value is None:
            raise ValueError(f"{where} must be true or false")
        return value
    if isinstance(default, (int, float)):  # an int default may stand for a float (momentum=0)
        for kind in (int, float) if isinstance(default, int) else (float,):
            try:
                return kind(raw)
            except ValueError:
                pass
        raise ValueError(f"{where} must be a number like its default {default!r}")
    if raw.lower() in words:
        return words[raw.lower()]
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw


class _MetricStepped(ReduceLROnPlateau):
    """A metric-driven scheduler of a plugin, as the ``ReduceLROnPlateau`` the Trainer
    steps with the evaluation metric (and never without it). Saves and loads the
    wrapped scheduler's own state."""

    def __init__(
        self, scheduler: Any
    ) -> None:  # torch's __init__ is not run: nothing of it is used
        self.scheduler = scheduler
        self.optimizer = scheduler.optimizer

    def step(self, metrics: Any, epoch: int | None = None) -> None:  # type: ignore[override]
        self.scheduler.step(metrics)

    def get_last_lr(self) -> list[Any]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return dict(self.scheduler.state_dict())

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state_dict)


class OptregTrainerMixin:
    """Put in front of a ``transformers.Trainer`` (sub)class to build optreg names.

    ``class MyTrainer(OptregTrainerMixin, SFTTrainer): ...``. The optimizer named by
    ``args.optim`` is built by `optimizer_cls_and_kwargs()` unless transformers has
    the name; the schedule named by ``args.lr_scheduler_type`` by
    [optreg.get_scheduler][], with ``args.get_warmup_steps(num_training_steps)``, the
    step count the Trainer computed and ``lr_scheduler_kwargs``.

    The name's policies hold: a train/eval optimizer (schedule-free) is in eval mode
    while a checkpoint or the model is saved (the Trainer itself switches it around
    evaluation and prediction), and ``max_grad_norm`` clips as
    [optreg.clip_grad_norm_][] does (``muon_adamw``: its AdamW side only).
    """

    args: transformers.TrainingArguments
    optimizer: Any
    lr_scheduler: Any

    @staticmethod
    def get_optimizer_cls_and_kwargs(
        args: transformers.TrainingArguments, model: Any = None
    ) -> tuple[Any, Any]:
        """transformers' class and keywords for its names, optreg's for the others."""
        name = _plain(args.optim)
        if name in _TRANSFORMERS_OPTIMIZERS:
            cls_and_kwargs: tuple[Any, Any] = transformers.Trainer.get_optimizer_cls_and_kwargs(
                args, model
            )
            return cls_and_kwargs
        return optimizer_cls_and_kwargs(str(name), args, model)

    def create_scheduler(self, num_training_steps: int, optimizer: Any = None) -> Any:
        """Build ``args.lr_scheduler_type`` with optreg (once, as the Trainer does)."""
        if self.lr_scheduler is None:
            optimizer = self.optimizer if optimizer is None else optimizer
            name = str(_plain(self.args.lr_scheduler_type))
            try:
                scheduler = get_scheduler(
                    name,
                    optimizer,
                    num_warmup_steps=self.args.get_warmup_steps(num_training_steps),
                    num_training_steps=num_training_steps,
                    scheduler_specific_kwargs=_kwargs(self.args.lr_scheduler_kwargs),
                )
            except (TypeError, ValueError) as e:
                raise type(e)(_where_to_fix(str(e), name)) from e
            if not isinstance(scheduler, ReduceLROnPlateau) and signature.step_needs_metric(
                scheduler
            ):
                scheduler = _MetricStepped(scheduler)
            decay = getattr(self.args, "weight_decay_scheduler_type", None)
            if decay is not None:
                if isinstance(scheduler, (ReduceLROnPlateau, _MetricStepped)):
                    raise ValueError(
                        f"weight_decay_scheduler_type={decay!r} steps with the lr schedule, "
                        f"and lr_scheduler_type {_plain(self.args.lr_scheduler_type)!r} is "
                        "metric-driven (the Trainer steps it after evaluations only): give "
                        "a schedule that is a function of the step, or no weight-decay schedule"
                    )
                scheduler = _WithWeightDecay(
                    scheduler,
                    get_scheduler(
                        str(decay),
                        optimizer,
                        num_warmup_steps=self.args.get_warmup_steps(num_training_steps),
                        num_training_steps=num_training_steps,
                        scheduler_specific_kwargs=_kwargs(
                            getattr(self.args, "weight_decay_scheduler_kwargs", None)
                        ),
                        hyperparameter="weight_decay",
                    ),
                )
            self.lr_scheduler = scheduler
            self._created_lr_scheduler = True
        return self.lr_scheduler

    def _clip_grad_norm(self, model: Any) -> Any:
        """``max_grad_norm`` as the name's clip policy says (through accelerate, which
        unscales mixed-precision gradients first); the Trainer's own clipping where the
        name has no policy or the run shards gradients its own way."""
        policy = clip_policy(unwrap_optimizer(self.optimizer))
        if policy is None or getattr(self, "is_deepspeed_enabled", False):
            return super()._clip_grad_norm(model)  # type: ignore[misc]
        params = clipped_parameters(unwrap_optimizer(self.optimizer))
        return self.accelerator.clip_grad_norm_(params, self.args.max_grad_norm)  # type: ignore[attr-defined]

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        """The Trainer's, with a train/eval optimizer in eval mode (the weights and state
        a schedule-free optimizer means to be saved)."""
        with eval_mode(unwrap_optimizer(self.optimizer)) if self.optimizer else nullcontext():
            super()._save_checkpoint(model, trial)  # type: ignore[misc]

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """The Trainer's, with a train/eval optimizer in eval mode."""
        with eval_mode(unwrap_optimizer(self.optimizer)) if self.optimizer else nullcontext():
            super().save_model(output_dir, _internal_call)  # type: ignore[misc]


def _where_to_fix(message: str, name: str) -> str:
    """A schedule's argument error, with where the Trainer takes that argument."""
    import re

    missing = re.search(r"requires `(\w+)`", message)
    if missing and missing.group(1) not in ("num_warmup_steps", "num_training_steps"):
        arg = missing.group(1)
        return (
            f"{message} Under the Trainer, a schedule's own arguments go in "
            f"lr_scheduler_kwargs: OptregTrainingArguments(lr_scheduler_type={name!r}, "
            f"lr_scheduler_kwargs={{{arg!r}: ...}}) or --lr_scheduler_kwargs "
            f"'{{\"{arg}\": ...}}'"
        )
    if "unexpected keyword argument" in message:
        return f"{message} (under the Trainer, from lr_scheduler_kwargs)"
    return message


class _WithWeightDecay:
    """The lr schedule and a weight-decay schedule, stepped, saved and loaded as one (the
    Trainer holds one ``lr_scheduler``); everything else is the lr schedule's."""

    def __init__(self, lr: Any, weight_decay: Any) -> None:
        self.lr, self.weight_decay = lr, weight_decay

    def step(self, *args: Any, **kwargs: Any) -> None:
        self.lr.step(*args, **kwargs)
        self.weight_decay.step()

    def state_dict(self) -> dict[str, Any]:
        return {"lr": self.lr.state_dict(), "weight_decay": self.weight_decay.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.lr.load_state_dict(state_dict["lr"])
        self.weight_decay.load_state_dict(state_dict["weight_decay"])

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["lr"], name)


def _kwargs(value: object) -> Mapping[str, Any] | None:
    if value is None or isinstance(value, Mapping):
        return value
    raise TypeError(f"lr_scheduler_kwargs must be a dict (or its JSON text), got {value!r}")


class OptregTrainer(OptregTrainerMixin, transformers.Trainer):
    """``transformers.Trainer`` building every optreg name (see `OptregTrainerMixin`)."""
