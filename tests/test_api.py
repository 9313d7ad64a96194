"""get_optimizer / get_scheduler / info: params forms, kwargs, step-count errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import optreg
from optreg import SchedulerType

pytestmark = pytest.mark.usefixtures("fresh_registry")


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.fc = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 2, bias=False)
        self.scale = nn.Parameter(torch.ones(4))
        self.frozen = nn.Parameter(torch.ones(2, 2), requires_grad=False)


def _ids(group: dict[str, object]) -> set[int]:
    return {id(p) for p in group["params"]}  # type: ignore[attr-defined]


def test_module_weight_decay_split() -> None:
    net = Net()
    opt = optreg.get_optimizer("adamw", net, lr=1e-3, weight_decay=0.1)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1
    assert no_decay["weight_decay"] == 0.0
    assert _ids(decay) == {id(net.embed.weight), id(net.fc.weight), id(net.head.weight)}
    assert _ids(no_decay) == {
        id(net.fc.bias),
        id(net.norm.weight),
        id(net.norm.bias),
        id(net.scale),
    }
    assert id(net.frozen) not in _ids(decay) | _ids(no_decay)


def test_module_uses_factory_default_weight_decay() -> None:
    # torch.optim.AdamW decays by 0.01 by default: the split still applies
    opt = optreg.get_optimizer("adamw", Net())
    assert [g["weight_decay"] for g in opt.param_groups] == [0.01, 0.0]


def test_module_without_weight_decay_is_one_group() -> None:
    net = Net()
    opt = optreg.get_optimizer("sgd", net, lr=0.1)
    assert len(opt.param_groups) == 1
    assert len(opt.param_groups[0]["params"]) == 7


def test_no_decay_patterns_replace_default_rule() -> None:
    net = Net()
    opt = optreg.get_optimizer("adamw", net, weight_decay=0.1, no_decay=["embed", "*.bias"])
    decay, no_decay = opt.param_groups
    assert _ids(no_decay) == {id(net.embed.weight), id(net.fc.bias), id(net.norm.bias)}
    assert id(net.norm.weight) in _ids(decay)


def test_overrides_by_substring_and_glob() -> None:
    net = Net()
    opt = optreg.get_optimizer(
        "sgd", net, lr=0.1, overrides={"embed": {"lr": 0.01}, "fc.*": {"momentum": 0.9}}
    )
    by_lr = {g["lr"]: g for g in opt.param_groups}
    assert _ids(by_lr[0.01]) == {id(net.embed.weight)}
    fc = next(g for g in opt.param_groups if g["momentum"] == 0.9)
    assert _ids(fc) == {id(net.fc.weight), id(net.fc.bias)}


def test_override_that_matches_nothing() -> None:
    with pytest.raises(ValueError, match="override pattern 'encoder' matches no parameter"):
        optreg.get_optimizer("sgd", Net(), lr=0.1, overrides={"encoder": {"lr": 1.0}})


def test_param_forms() -> None:
    a, b = nn.Parameter(torch.ones(2)), nn.Parameter(torch.ones(3, 3))
    assert len(optreg.get_optimizer("sgd", [a, b], lr=0.1).param_groups) == 1
    opt = optreg.get_optimizer("sgd", [{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    opt = optreg.get_optimizer("adamw", [("w", b), ("bias", a)], weight_decay=0.5)
    assert [len(g["params"]) for g in opt.param_groups] == [1, 1]
    assert opt.param_groups[1]["weight_decay"] == 0.0
    gen = (p for p in [a, b])
    assert len(optreg.get_optimizer("sgd", gen, lr=0.1).param_groups[0]["params"]) == 2


@pytest.mark.parametrize(
    ("params", "exc", "match"),
    [
        (nn.Parameter(torch.ones(2)), TypeError, "got a single torch.FloatTensor"),
        ({"params": []}, TypeError, "got a single dict"),
        ([], ValueError, "empty parameter list"),
        ([1, 2], TypeError, "found int: 1"),
        (nn.ReLU(), ValueError, "ReLU has no trainable parameters"),
    ],
)
def test_bad_params(params: object, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        optreg.get_optimizer("sgd", params, lr=0.1)


def test_overrides_need_names() -> None:
    with pytest.raises(ValueError, match="need parameter names"):
        optreg.get_optimizer("sgd", [nn.Parameter(torch.ones(1))], overrides={"x": {}})


def test_unknown_kwarg() -> None:
    with pytest.raises(TypeError) as info:
        optreg.get_optimizer("adamw", Net(), lr=1e-3, weight_decy=0.1)
    msg = str(info.value)
    assert msg.startswith("optimizer 'adamw' (")
    assert "unexpected keyword argument 'weight_decy'; did you mean 'weight_decay'?" in msg
    assert "Accepted keywords: lr, betas, eps, weight_decay" in msg


def test_invalid_values_show_the_value() -> None:
    label = r"optimizer 'sgd' \(torch.optim:SGD\): "
    with pytest.raises(ValueError, match=label + "`lr` must be >= 0, got -1.0"):
        optreg.get_optimizer("sgd", Net(), lr=-1.0)
    with pytest.raises(ValueError, match=label + "`lr` must be a finite number >= 0, got nan"):
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
            "cosine: `num_training_steps` must be an int >= 0, got str: '5'",
        ),
        (
            {"num_warmup_steps": float("nan"), "num_training_steps": 5},
            ValueError,
            "must be a whole number of steps >= 0, got nan",
        ),
        ({"num_warmup_steps": 2.5, "num_training_steps": 5}, ValueError, "got 2.5"),
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


def test_info() -> None:
    info = optreg.optimizer_info("AdamW_Torch")
    assert info.name == "adamw"
    assert "adamw_torch" in info.aliases
    assert info.provider == "optreg"
    assert info.available is True and info.reason is None
    assert info.signature is not None and "lr" in info.signature
    assert info.qualified_name == "optreg:adamw"
    sinfo = optreg.scheduler_info("linear")
    assert set(sinfo.required_args) == {"num_warmup_steps", "num_training_steps"}


def test_runtime_info_provider() -> None:
    optreg.register_optimizer("mine", "torch.optim:SGD", description="mine")
    assert optreg.optimizer_info("mine").provider == "(registered at run time)"
    assert optreg.optimizer_info("mine").description == "mine"
