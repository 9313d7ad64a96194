"""optreg._core.validate: one dialect of value checks, and the generic hyperparameter layer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import torch

import optreg
from optreg._core import validate  # the module under test

np = pytest.importorskip("numpy")


class ListLike(Sequence[Any]):
    """A sequence that is not a list or tuple (like omegaconf's ListConfig)."""

    def __init__(self, *items: Any) -> None:
        self._items = list(items)

    def __getitem__(self, i: Any) -> Any:
        return self._items[i]

    def __len__(self) -> int:
        return len(self._items)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: validate.real("x", "1"), TypeError, "`x` must be a number, got str: '1'"),
        (lambda: validate.real("x", True), TypeError, "`x` must be a number, got bool: True"),
        (lambda: validate.real("x", float("nan")), ValueError, "`x` must be a finite number, got nan"),
        (lambda: validate.real("x", -1, low=0), ValueError, "`x` must be >= 0, got -1"),
        (lambda: validate.real("x", 0.0, low=0, low_open=True), ValueError, "`x` must be > 0, got 0.0"),
        (lambda: validate.real("x", 1, low=0, high=1, high_open=True), ValueError, "`x` must be in [0, 1), got 1"),
        (lambda: validate.real("x", float("inf"), low=0), ValueError, "`x` must be a finite number >= 0, got inf"),
        (lambda: validate.count("n", 1.0), ValueError, "`n` must be an int >= 0, got 1.0"),
        (lambda: validate.count("n", 0, minimum=1), ValueError, "`n` must be an int >= 1, got 0"),
        (lambda: validate.steps("s", 2.5), ValueError, "`s` must be a whole number of steps >= 0, got 2.5"),
        (lambda: validate.steps("s", -1), ValueError, "`s` must be >= 0, got -1"),
        (lambda: validate.steps("s", None), TypeError, "`s` must be a whole number of steps >= 0, got NoneType: None"),
        (lambda: validate.reals("b", "ab"), TypeError, "`b` must be a sequence of numbers, got str: 'ab'"),
        (lambda: validate.reals("b", (0.9,), minimum=2), ValueError, "`b` must have 2 or more numbers, got 1: (0.9,)"),
        (lambda: validate.reals("b", (0.9, "x")), TypeError, "`b` must be a sequence of numbers, got (0.9, 'x')"),
        (lambda: validate.per_group("min_lr", [1, 2], 3), ValueError, "expected 3 min_lrs, got 2"),
    ],
)  # fmt: skip
def test_messages(call: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        call()
    assert str(info.value) == message


def test_numpy_scalars_and_sequences_are_numbers() -> None:
    assert validate.real("x", np.float32(0.5)) == 0.5
    assert validate.count("n", np.int64(3)) == 3
    assert validate.steps("s", np.float64(4.0)) == 4
    assert validate.reals("b", ListLike(0.9, np.float32(0.5))) == (0.9, 0.5)
    assert validate.per_group("m", np.float64(0.1), 2) == [0.1, 0.1]


def _third_party(
    params: Any, lr: float = 1e-3, beta1: str = "auto", eps: tuple[float, ...] = (1e-8,)
) -> torch.optim.Optimizer:
    """A third-party optimizer with its own ideas about beta1 and eps."""
    opt = torch.optim.SGD(params, lr=lr)
    opt.defaults["seen"] = (beta1, eps)
    return opt


def test_hyperparameters_checks_only_what_the_factory_declares() -> None:
    checked = validate.hyperparameters(
        "f", _third_party, {"lr": np.float32(0.25), "beta1": [1, 2, 3], "eps": ListLike(1e-6)}
    )
    # lr declared a number: checked and made a float; beta1 declared a str: left alone;
    # eps declared a tuple of numbers: any sequence becomes a tuple (one number is enough)
    assert checked == {"lr": 0.25, "beta1": [1, 2, 3], "eps": (1e-6,)}
    assert type(checked["lr"]) is float
    assert validate.hyperparameters("f", _third_party, {"lr": -1}) == {"lr": -1}  # its own rule
    with pytest.raises(ValueError, match="^f: `lr` must be >= 0, got -1$"):
        validate.hyperparameters("f", _third_party, {"lr": -1}, group=True)
    tensor_lr = torch.tensor(0.1)
    assert validate.hyperparameters("f", _third_party, {"lr": tensor_lr})["lr"] is tensor_lr


def test_through_get_optimizer(fresh_registry: None) -> None:
    optreg.register_optimizer("third_party", _third_party)
    opt = optreg.get_optimizer(
        "third_party", [torch.nn.Parameter(torch.zeros(1))], beta1="sure", eps=[1e-3, 1e-4]
    )
    assert opt.defaults["seen"] == ("sure", (1e-3, 1e-4))  # no Adafactor-style eps rule
    # a Hydra/OmegaConf-style list where torch takes a tuple
    adamw = optreg.get_optimizer(
        "adamw", [torch.nn.Parameter(torch.zeros(1))], betas=ListLike(0.9, 0.95)
    )
    assert adamw.param_groups[0]["betas"] == (0.9, 0.95)
