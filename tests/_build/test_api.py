"""get_optimizer / get_scheduler / info: params forms, kwargs, step-count errors."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from helpers import Net, sgd
from torch import nn

import optreg
from optreg import SchedulerType

pytestmark = pytest.mark.usefixtures("fresh_registry")


def test_unknown_kwarg() -> None:
    with pytest.raises(TypeError) as info:
        optreg.get_optimizer("adamw", Net(), lr=1e-3, weight_decy=0.1)
    msg = str(info.value)
    assert msg.startswith("optimizer 'adamw' (")
    assert "unexpected keyword argument 'weight_decy'; did you mean 'weight_decay'?" in msg
    assert "Accepted keywords: lr, betas, eps, weight_decay" in msg


def test_invalid_values_show_the_value() -> None:
    label = r"optimizer 'sgd' \(torch.optim:SGD\): "
    with pytest.raises(ValueError, match=label + "`lr` must be a finite number, got nan"):
        optreg.get_optimizer("sgd", Net(), lr=float("nan"))
    with pytest.raises(
        ValueError, match=r"'adamw' .*: `betas` must hold finite numbers, got \(nan, 0.9\)"
    ):
        optreg.get_optimizer("adamw", Net(), betas=(float("nan"), 0.9))
    with pytest.raises(ValueError, match="`weight_decay` must be a finite number, got inf"):
        optreg.get_optimizer("sgd", Net(), lr=0.1, weight_decay=float("inf"))
    with pytest.raises(TypeError, match=r"`momentum` must be a number, got str: 'x'"):
        optreg.get_optimizer("sgd", Net(), lr=0.1, momentum="x")
    with pytest.raises(ValueError, match=r"overrides\['fc'\]: `lr` must be >= 0, got -0.5"):
        optreg.get_optimizer("sgd", Net(), lr=0.1, overrides={"fc": {"lr": -0.5}})


def test_optimizer_rules_are_the_constructors_own() -> None:
    # the generic layer checks kinds of values; ranges belong to the optimizer, as in torch
    with pytest.raises(ValueError, match="Invalid beta parameter at index 0: 1.5"):
        optreg.get_optimizer("adamw", Net(), betas=(1.5, 0.9))
    with pytest.raises(ValueError, match="Invalid weight_decay value: -1.0"):
        optreg.get_optimizer("sgd", Net(), lr=0.1, weight_decay=-1.0)
    with pytest.raises(ValueError, match=r"^Invalid learning rate: -1.0$"):
        optreg.get_optimizer("sgd", Net(), lr=-1.0)
    with pytest.raises(ValueError, match=r"^Invalid learning rate: -1.0 - should be >= 0.0$"):
        optreg.get_optimizer("adamw_hf", Net(), lr=-1.0)  # transformers' wording, as README says


def test_sequences_and_numpy_scalars_are_accepted() -> None:
    np = pytest.importorskip("numpy")
    opt = optreg.get_optimizer(
        "adamw", Net(), lr=np.float32(0.5), betas=[0.8, np.float64(0.9)], weight_decay=np.int64(0)
    )
    group = opt.param_groups[0]
    assert group["betas"] == (0.8, 0.9)
    assert type(group["lr"]) is float and group["lr"] == 0.5
    assert type(group["weight_decay"]) is int


def _opt() -> torch.optim.Optimizer:
    return optreg.get_optimizer("sgd", [nn.Parameter(torch.ones(2))], lr=1.0)


def test_get_scheduler_requires_steps() -> None:
    with pytest.raises(
        ValueError, match=r"^linear requires `num_warmup_steps`, please provide that argument\.$"
    ):
        optreg.get_scheduler("linear", _opt(), num_training_steps=10)
    with pytest.raises(
        ValueError, match=r"^cosine requires `num_training_steps`, please provide that argument\.$"
    ):
        optreg.get_scheduler("cosine", _opt(), num_warmup_steps=2)


def test_get_scheduler_constant_ignores_step_counts() -> None:
    opt = _opt()
    sched = optreg.get_scheduler("constant", opt, num_warmup_steps=5, num_training_steps=10)
    for _ in range(3):
        opt.step()
        sched.step()
    assert sched.get_last_lr() == [1.0]


def test_get_scheduler_values_and_enum() -> None:
    opt = _opt()
    sched = optreg.get_scheduler(
        SchedulerType.LINEAR, opt, num_warmup_steps=2, num_training_steps=6
    )
    lrs = []
    for _ in range(7):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs == [0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0]


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (
            {"num_warmup_steps": -1, "num_training_steps": 5},
            ValueError,
            "`num_warmup_steps` must be >= 0, got -1",
        ),
        (
            {"num_warmup_steps": 1, "num_training_steps": "5"},
            TypeError,
            "cosine: `num_training_steps` must be a whole number of steps >= 0, got str: '5'",
        ),
        (
            {"num_warmup_steps": float("nan"), "num_training_steps": 5},
            ValueError,
            "must be a whole number of steps >= 0, got nan",
        ),
        ({"num_warmup_steps": 2.5, "num_training_steps": 5}, ValueError, "got 2.5"),
        (
            {"num_warmup_steps": 1, "num_training_steps": 10**400},
            ValueError,
            r"cosine: `num_training_steps` must be at most 9,007,199,254,740,992 \(schedules "
            r"compute in float64\), got 100000000000\.\.\. \(401 digits\)",
        ),
        (
            {"num_warmup_steps": 2**60, "num_training_steps": 10},
            ValueError,
            r"`num_warmup_steps` must be at most 9,007,199,254,740,992",
        ),
        (
            {"num_warmup_steps": 1, "num_training_steps": 5, "num_cycle": 2},
            TypeError,
            "did you mean 'num_cycles'",
        ),
    ],
)
def test_get_scheduler_bad_arguments(
    kwargs: dict[str, object], exc: type[Exception], match: str
) -> None:
    with pytest.raises(exc, match=match):
        optreg.get_scheduler("cosine", _opt(), **kwargs)  # type: ignore[arg-type]


def test_scheduler_specific_kwargs_merge() -> None:
    opt = _opt()
    sched = optreg.get_scheduler(
        "cosine",
        opt,
        num_warmup_steps=0,
        num_training_steps=4,
        scheduler_specific_kwargs={"num_cycles": 1.0},
    )
    for _ in range(2):
        opt.step()
        sched.step()
    assert sched.get_last_lr()[0] == pytest.approx(0.0, abs=1e-12)  # full cycle: back down at p=0.5


# ---------------------------------------------------------------- hardening (issue 15)


@pytest.mark.parametrize("optimizer", ["not an optimizer", None, 3])
def test_get_scheduler_rejects_what_is_not_an_optimizer(optimizer: object) -> None:
    with pytest.raises(TypeError) as info:
        optreg.get_scheduler("cosine", optimizer, 1, 10)
    assert str(info.value) == (
        f"cosine: `optimizer` must be a torch.optim.Optimizer, got "
        f"{type(optimizer).__name__}: {optimizer!r}"
    )


def _required_specific() -> list[tuple[str, str]]:
    out = []
    for name in optreg.list_schedulers():
        info = optreg.scheduler_info(name)
        out += [
            (name, a)
            for a in info.required_args
            if a not in ("num_warmup_steps", "num_training_steps")
        ]
    return out


@pytest.mark.parametrize(("name", "arg"), _required_specific())
def test_every_required_schedule_argument_is_named(name: str, arg: str) -> None:
    opt = sgd(0.1)
    with pytest.raises(ValueError) as info:
        optreg.get_scheduler(name, opt, num_warmup_steps=2, num_training_steps=20)
    assert str(info.value) == f"{name} requires `{arg}`, please provide that argument."


def test_required_schedule_arguments_exist() -> None:
    assert ("warmup_stable_decay", "num_decay_steps") in _required_specific()


def test_numpy_step_counts() -> None:
    np = pytest.importorskip("numpy")
    sched = optreg.get_scheduler("linear", sgd(1.0), np.int64(2), np.float64(10.0))
    assert sched.lr_lambdas[0].keywords == {"num_warmup_steps": 2, "num_training_steps": 10}


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"lr": None}, TypeError, "`lr` must be a number, got NoneType: None"),
        ({"eps": None}, TypeError, "`eps` must be a number, got NoneType: None"),
        ({"eps": (1e-30, 1e-3)}, TypeError, "`eps` must be a number, got tuple: (1e-30, 0.001)"),
        ({"weight_decay": True}, TypeError, "`weight_decay` must be a number, got bool: True"),
        ({"amsgrad": None}, TypeError, "`amsgrad` must be True or False, got NoneType: None"),
        ({"lr": 10**400}, ValueError, "`lr` must be a finite number, got 1000"),
        ({"lr": torch.tensor(float("nan"))}, ValueError, "`lr` must be a finite number >= 0, got tensor(nan)"),
    ],
)  # fmt: skip
def test_values_torch_would_take_badly(
    kwargs: dict[str, object], error: type, message: str
) -> None:
    with pytest.raises(error) as info:
        optreg.get_optimizer("adamw", Net(), **kwargs)
    assert str(info.value).startswith("optimizer 'adamw' (optreg.builtin.torch_optim:adamw): ")
    assert message in str(info.value)


def test_override_options_are_checked_like_keywords() -> None:
    with pytest.raises(
        TypeError,
        match=r"overrides\['fc'\] got an unexpected keyword argument 'lrr'; did you mean 'lr'\?",
    ):
        optreg.get_optimizer("adamw", Net(), overrides={"fc": {"lrr": 1e-5}})
    with pytest.raises(
        TypeError, match=r"overrides must map name patterns to option dicts.*'fc': 0.1"
    ):
        optreg.get_optimizer("adamw", Net(), overrides={"fc": 0.1})
    with pytest.raises(TypeError, match=r"overrides\['fc'\]: 'params' is not an option"):
        optreg.get_optimizer("adamw", Net(), overrides={"fc": {"params": []}})


def test_a_factory_must_return_an_optimizer() -> None:
    optreg.register_optimizer("returns_none", lambda params, **kw: None)
    with pytest.raises(TypeError) as info:
        optreg.get_optimizer("returns_none", Net())
    assert "returned builtins.NoneType (None), not a torch.optim.Optimizer" in str(info.value)
    assert "(__runtime__) is broken" in str(info.value)


def test_a_scheduler_factory_must_return_a_scheduler() -> None:
    optreg.register_scheduler("sched_returns_none", lambda optimizer: None)
    with pytest.raises(TypeError) as info:
        optreg.get_scheduler("sched_returns_none", _opt())
    assert str(info.value).startswith("scheduler 'sched_returns_none' (")
    assert (
        "returned builtins.NoneType (None), not a scheduler (an object with step(), such as "
        "a torch LRScheduler)"
    ) in str(info.value)
    assert "(__runtime__) is broken" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"layer_decay": 0.5, "layer_pattern": r"\d+"},
            ValueError,
            r"layer_pattern '\\\\d\+' has no group: its first group must capture the layer index",
        ),
        (
            {"layer_decay": 0.5, "layer_pattern": "("},
            ValueError,
            r"layer_pattern '\(' is not a regular expression: missing \)",
        ),
        (
            {"layer_decay": 0.5, "layer_pattern": r"(\w+)\.bias"},
            ValueError,
            r"layer_pattern '\(\\\\w\+\)\\\\.bias': its first group matched 'fc' in 'fc.bias', "
            r"not a layer index",
        ),
        (
            {"layer_decay": 0.5, "layer_pattern": 3},
            TypeError,
            r"layer_pattern must be a regex str, got int: 3",
        ),
        (
            {"layer_pattern": r"layers\.(\d+)"},
            ValueError,
            r"layer_pattern='layers\\\\.\(\\\\d\+\)' is read only with layer_decay",
        ),
    ],
)
def test_a_bad_layer_pattern_is_refused_at_build(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        optreg.get_optimizer("adamw", Net(), **kwargs)


@pytest.mark.parametrize(
    ("groups", "match"),
    [
        (
            [{"params": None}],
            r"param group 0: 'params' must be a tensor or an iterable of "
            r"tensors, got NoneType: None",
        ),
        (
            [{"params": [torch.zeros(1)]}, {"params": [1.5]}],
            r"param group 1: 'params' must "
            r"hold tensors, found float: 1\.5",
        ),
    ],
)
def test_a_param_group_without_tensors_is_named(groups: list[Any], match: str) -> None:
    with pytest.raises(TypeError, match=match):
        optreg.get_optimizer("adamw", groups)


def test_a_factory_contract_that_is_not_one_is_the_plugins_failure() -> None:
    class Odd:
        optreg_contract = ("routes_params", True)  # not a FactoryContract

        def __call__(self, params: Any, lr: float = 0.1) -> Any:
            return torch.optim.SGD(params, lr=lr)

    optreg.register_optimizer("odd_contract", Odd())
    with pytest.raises(
        optreg.PluginLoadError,
        match=r"optimizer 'odd_contract' from distribution '__runtime__': .*optreg_contract must "
        r"be an optreg.FactoryContract, got tuple",
    ):
        optreg.get_optimizer("odd_contract", Net())


def test_group_options_of_a_contract_reach_overrides_and_rules() -> None:
    def factory(params: Any, lr: float = 0.1) -> Any:
        return torch.optim.SGD(params, lr=lr)

    factory.optreg_contract = optreg.FactoryContract(group_options=("momentum",))  # type: ignore[attr-defined]
    optreg.register_optimizer("sgd_with_momentum_groups", factory)
    opt = optreg.get_optimizer(
        "sgd_with_momentum_groups", Net(), overrides={"fc": {"momentum": 0.9}}
    )
    assert sorted(g["momentum"] for g in opt.param_groups) == [0, 0.9]
    with pytest.raises(TypeError, match=r"got an unexpected keyword argument 'dampening'"):
        optreg.get_optimizer(
            "sgd_with_momentum_groups", Net(), overrides={"fc": {"dampening": 0.1}}
        )


def test_errors_say_where_to_fix() -> None:
    """transformers' habits, a schedule for an optimizer, a neighbour schedule's argument."""
    model = torch.nn.Linear(2, 2)
    with pytest.raises(TypeError) as info:
        optreg.get_optimizer("adamw", model, learning_rate=1e-3)
    assert "argument 'learning_rate'; did you mean 'lr' (transformers' learning_rate)? " in str(
        info.value
    )
    with pytest.raises(TypeError, match=r"did you mean 'betas' \(transformers' adam_beta1"):
        optreg.get_optimizer("adamw", model, adam_beta1=0.9)
    with pytest.raises(TypeError) as info:
        optreg.get_optimizer("adamw", model, zzz=1)
    assert "unexpected keyword argument 'zzz'. Accepted keywords: lr, betas" in str(info.value)
    with pytest.raises(optreg.UnknownNameError) as unknown:
        optreg.get_optimizer("cosine", model)
    assert str(unknown.value) == (
        "unknown optimizer 'cosine': 'cosine' is a scheduler name; build it with "
        "optreg.get_scheduler('cosine', ...) (see `optreg list optimizers` for the optimizers)"
    )
    opt = optreg.get_optimizer("sgd", model, lr=0.1)
    with pytest.raises(TypeError) as info:
        optreg.get_scheduler("cosine", opt, num_warmup_steps=1, num_training_steps=10, min_lr=0.1)
    assert str(info.value).endswith(
        ". 'min_lr' is an argument of the schedule 'cosine_with_min_lr': use that name"
    )
    wsd = optreg.get_scheduler(
        "wsd", opt, num_warmup_steps=1, num_training_steps=10, num_decay_steps=2
    )
    assert optreg.scheduler_info("wsd").name == "warmup_stable_decay" and wsd is not None
