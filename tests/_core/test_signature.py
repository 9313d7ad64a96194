"""optreg._core.signature: what factories accept, require and how schedulers are stepped."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from helpers import sgd
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau

from optreg._core import signature as _signature  # the module under test


def factory(params: Any, lr: float = 0.1, *, momentum: float = 0.0, nesterov: bool = False) -> None:
    """A factory with a positional, a default and keyword-only arguments."""


def needs_lr(params: Any, lr: float, **kwargs: Any) -> None:
    """``lr`` is required; anything else is accepted."""


def test_accepted_keywords_skip_the_first_argument() -> None:
    assert _signature.accepted_keywords(factory) == ["lr", "momentum", "nesterov"]
    assert _signature.accepted_keywords(needs_lr) is None  # **kwargs: anything goes
    assert _signature.accepted_keywords(print) is None or isinstance(
        _signature.accepted_keywords(print), list
    )


def test_check_keywords_suggests_and_lists() -> None:
    with pytest.raises(TypeError) as info:
        _signature.check_keywords("optimizer 'f'", factory, {"momentun": 0.9})
    assert str(info.value) == (
        "optimizer 'f' got an unexpected keyword argument 'momentun'; did you mean "
        "'momentum'? Accepted keywords: lr, momentum, nesterov"
    )
    _signature.check_keywords("x", needs_lr, {"anything": 1})
    with pytest.raises(TypeError, match="Accepted keywords: momentum, nesterov"):
        _signature.check_keywords("x", factory, {"lr": 1}, reserved=("lr",))


def test_defaults_requirements_and_description() -> None:
    assert _signature.default(factory, "lr") == 0.1
    assert _signature.default(factory, "missing") is None
    assert _signature.requires(needs_lr, "lr") and not _signature.requires(factory, "lr")
    text, required = _signature.describe(needs_lr)
    assert text == "(params: 'Any', lr: 'float', **kwargs: 'Any') -> 'None'"
    assert required == ("lr",)
    assert _signature.takes(factory, "momentum") == "named"
    assert _signature.takes(needs_lr, "momentum") == "var"
    assert _signature.takes(factory, "beta") is None


def test_metric_driven_and_closure_detection_and_stepping() -> None:
    opt, other = sgd(1.0), sgd(1.0)
    plateau = ReduceLROnPlateau(opt, patience=0, factor=0.5)
    lambda_lr = LambdaLR(other, lambda s: 0.5**s)
    assert _signature.step_needs_metric(plateau)
    assert not _signature.step_needs_metric(lambda_lr)
    for _ in range(3):
        opt.step()
        other.step()
        _signature.step_scheduler(plateau, 1.0)  # stalls: the lr is cut
        _signature.step_scheduler(lambda_lr, 1.0)  # the metric is not passed
    assert opt.param_groups[0]["lr"] < 1.0
    assert lambda_lr.get_last_lr() == [0.125]
    lbfgs = torch.optim.LBFGS([torch.nn.Parameter(torch.zeros(1))])
    assert _signature.needs_closure(lbfgs) and not _signature.needs_closure(opt)


def test_a_build_reads_a_factorys_signature_once(
    monkeypatch: pytest.MonkeyPatch, fresh_registry: None
) -> None:
    import inspect

    import torch

    import optreg

    def factory(params: Any, lr: float = 0.1, momentum: float = 0.0) -> Any:
        return torch.optim.SGD(params, lr=lr, momentum=momentum)

    optreg.register_optimizer("counted_sgd", factory)
    reads: list[Any] = []
    original = inspect.signature

    def counting(fn: Any, *args: Any, **kwargs: Any) -> Any:
        reads.append(fn)
        return original(fn, *args, **kwargs)

    monkeypatch.setattr(inspect, "signature", counting)
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.LayerNorm(3))
    for _ in range(3):
        optreg.get_optimizer(
            "counted_sgd", model, lr=0.2, momentum=0.9, overrides={"0.": {"lr": 0.1}}
        )
    assert sum(fn is factory for fn in reads) == 1  # three builds, one read, cached
