"""optreg.params: parameter groups from tensors, groups, named pairs or a module; decay split, overrides."""

from __future__ import annotations

import pytest
import torch
from helpers import Net
from torch import nn

import optreg

pytestmark = pytest.mark.usefixtures("fresh_registry")


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


# ---------------------------------------------------------------- hardening (issue 15)


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        (None, TypeError, "params must be an iterable of tensors, of (name, tensor) pairs, of param-group dicts, or an nn.Module; got NoneType: None"),
        (3, TypeError, "got int: 3"),
        ([{"lr": 0.1}], ValueError, "param group 0 has no 'params' key; got keys ['lr']"),
    ],
)  # fmt: skip
def test_bad_params_are_named(params: object, error: type, message: str) -> None:
    with pytest.raises(error) as info:
        optreg.get_optimizer("sgd", params, lr=0.1)
    assert message in str(info.value)


def test_group_params_given_as_a_generator_are_read_once() -> None:
    net = Net()
    groups = optreg.group_parameters(
        [{"params": net.fc.parameters(), "lr": 0.1}, {"params": net.scale}]
    )
    assert [len(g["params"]) for g in groups] == [2, 1]
    assert groups[0]["params"][0] is net.fc.weight


def test_lazy_parameters_are_refused_until_initialised() -> None:
    model = nn.Sequential(nn.LazyLinear(4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ValueError) as info:
        optreg.get_optimizer("adamw", model, weight_decay=0.1)
    assert str(info.value) == (
        "parameter '0.weight' is not initialised yet (a lazy module such as nn.LazyLinear): "
        "run one forward pass before building the optimizer"
    )
    model(torch.zeros(1, 3))
    decay, no_decay = optreg.get_optimizer("adamw", model, weight_decay=0.1).param_groups
    assert {id(p) for p in decay["params"]} == {id(model[0].weight), id(model[2].weight)}
    assert len(no_decay["params"]) == 2


def test_no_decay_as_one_string_is_one_pattern() -> None:
    net = Net()
    decay, no_decay = optreg.get_optimizer(
        "adamw", net, weight_decay=0.1, no_decay="bias"
    ).param_groups
    assert {id(p) for p in no_decay["params"]} == {id(net.fc.bias), id(net.norm.bias)}
    assert id(net.fc.weight) in {id(p) for p in decay["params"]}


def test_param_groups_is_a_deprecated_name_of_group_parameters() -> None:
    from optreg.params import param_groups

    model = Net()
    with pytest.warns(DeprecationWarning, match=r"call optreg.group_parameters\(params, "):
        old = param_groups(model, weight_decay=0.1, overrides={"fc": {"lr": 0.5}}, lr=1.0)
    new = optreg.group_parameters(model, weight_decay=0.1, overrides={"fc": {"lr": 0.5}}, lr=1.0)
    assert [{k: v for k, v in g.items() if k != "params"} for g in old] == [
        {k: v for k, v in g.items() if k != "params"} for g in new
    ]
    assert [[id(p) for p in g["params"]] for g in old] == [
        [id(p) for p in g["params"]] for g in new
    ]
