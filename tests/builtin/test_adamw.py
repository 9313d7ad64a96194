"""adamw_hf: the classic transformers AdamW, against a per-parameter reference."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

import optreg
from optreg.builtin.adamw import ClassicAdamW


class Reference:
    """Per-parameter AdamW written from the math (REFERENCE.md), in float64."""

    def __init__(
        self,
        params: list[torch.Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        correct_bias: bool = True,
    ) -> None:
        self.params = [p.detach().double().clone() for p in params]
        self.lr, self.betas, self.eps = lr, betas, eps
        self.weight_decay, self.correct_bias = weight_decay, correct_bias
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = [0 for _ in self.params]

    def step(self, grads: list[torch.Tensor | None]) -> None:
        b1, b2 = self.betas
        for i, g in enumerate(grads):
            if g is None:
                continue
            g = g.double()
            self.t[i] += 1
            t = self.t[i]
            self.m[i] = b1 * self.m[i] + (1 - b1) * g
            self.v[i] = b2 * self.v[i] + (1 - b2) * g * g
            denom = self.v[i].sqrt() + self.eps
            step = self.lr * math.sqrt(1 - b2**t) / (1 - b1**t) if self.correct_bias else self.lr
            self.params[i] = self.params[i] - step * self.m[i] / denom
            if self.weight_decay > 0:
                self.params[i] = self.params[i] - self.lr * self.weight_decay * self.params[i]


SHAPES = [(6, 5), (5,), (3, 4, 2), ()]


def _params(dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [torch.nn.Parameter(torch.randn(s, generator=gen).to(dtype)) for s in SHAPES]


def _grads(step: int, params: list[torch.Tensor]) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(100 + step)
    return [torch.randn(p.shape, generator=gen).to(p.dtype) for p in params]


def _close(params: list[torch.Tensor], ref: Reference, rtol: float = 1e-6) -> None:
    for p, r in zip(params, ref.params, strict=True):
        torch.testing.assert_close(p.detach().double(), r, rtol=rtol, atol=1e-7)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"lr": 1e-2, "weight_decay": 0.1},
        {"lr": 5e-3, "betas": (0.8, 0.95), "eps": 1e-8, "correct_bias": False},
        {"lr": 1e-2, "betas": (0.0, 0.0), "weight_decay": 0.5},
    ],
)
def test_matches_reference(kwargs: dict[str, Any]) -> None:
    params = _params()
    ref = Reference(params, **kwargs)
    opt = ClassicAdamW(params, **kwargs)
    for step in range(8):
        grads = _grads(step, params)
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        opt.step()
        ref.step(list(grads))
    _close(params, ref)
    assert [opt.state[p]["step"] for p in params] == [8] * len(params)


def test_matches_transformers_op_order_exactly() -> None:
    """Same float32 ops as transformers' loop, parameter by parameter: bit-identical."""
    params = _params()
    mirror = [p.detach().clone() for p in params]
    m = [torch.zeros_like(p) for p in mirror]
    v = [torch.zeros_like(p) for p in mirror]
    lr, b1, b2, eps, wd = 1e-2, 0.9, 0.999, 1e-6, 0.1
    opt = ClassicAdamW(params, lr=lr, weight_decay=wd)
    for step in range(1, 6):
        grads = _grads(step, params)
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        opt.step()
        for i, g in enumerate(grads):
            m[i].mul_(b1).add_(g, alpha=1 - b1)
            v[i].mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = v[i].sqrt().add_(eps)
            step_size = lr * math.sqrt(1 - b2**step) / (1 - b1**step)
            mirror[i].addcdiv_(m[i], denom, value=-step_size)
            mirror[i].add_(mirror[i], alpha=-lr * wd)
    for p, q in zip(params, mirror, strict=True):
        assert torch.equal(p.detach(), q)


def test_params_with_different_step_counts() -> None:
    params = _params()
    ref = Reference(params, lr=1e-2)
    opt = ClassicAdamW(params, lr=1e-2)
    for step in range(6):
        grads: list[torch.Tensor | None] = list(_grads(step, params))
        if step < 2:
            grads[1] = None  # the bias starts later: its bias correction lags
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        opt.step()
        ref.step(grads)
    assert opt.state[params[1]]["step"] == 4
    assert opt.state[params[0]]["step"] == 6
    _close(params, ref)


def test_groups_and_dtypes() -> None:
    p32 = _params()
    p64 = [torch.nn.Parameter(torch.randn(4, 3, dtype=torch.float64))]
    ref32 = Reference(p32, lr=1e-2)
    ref64 = Reference(p64, lr=2e-2, weight_decay=0.1)
    opt = ClassicAdamW([{"params": p32}, {"params": p64, "lr": 2e-2, "weight_decay": 0.1}], lr=1e-2)
    for step in range(5):
        for group, ref in ((p32, ref32), (p64, ref64)):
            grads = _grads(step, group)
            for p, g in zip(group, grads, strict=True):
                p.grad = g
            ref.step(list(grads))
        opt.step()
    _close(p32, ref32)
    _close(p64, ref64, rtol=1e-12)
    assert opt.state[p64[0]]["exp_avg"].dtype == torch.float64


def test_bfloat16_params_keep_their_dtype() -> None:
    params = _params(torch.bfloat16)
    opt = ClassicAdamW(params, lr=1e-2)
    for step in range(3):
        for p, g in zip(params, _grads(step, params), strict=True):
            p.grad = g
        opt.step()
    assert all(p.dtype == torch.bfloat16 for p in params)
    assert opt.state[params[0]]["exp_avg_sq"].dtype == torch.bfloat16


def test_params_without_grad_are_skipped() -> None:
    params = _params()
    opt = ClassicAdamW(params)
    before = params[0].detach().clone()
    params[1].grad = torch.ones_like(params[1])
    opt.step()
    assert torch.equal(params[0].detach(), before)
    assert params[0] not in opt.state
    assert opt.step() is None


def test_closure_returns_loss_and_sees_grad_mode() -> None:
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = ClassicAdamW([w], lr=0.1)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        assert torch.is_grad_enabled()
        loss = (w**2).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss is not None
    assert loss.item() == 5.0
    # first step: m = 0.1 g, v = 0.001 g**2, step size = 0.1 * sqrt(0.001) / 0.1
    expected = [
        x - 0.1 * math.sqrt(0.001) / 0.1 * 0.1 * (2 * x) / (math.sqrt(0.001) * abs(2 * x) + 1e-6)
        for x in (1.0, -2.0)
    ]
    torch.testing.assert_close(w.detach(), torch.tensor(expected), rtol=1e-6, atol=0)


def test_no_deprecation_warning() -> None:
    params = _params()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt = ClassicAdamW(params)
        for p in params:
            p.grad = torch.ones_like(p)
        opt.step()


def test_defaults() -> None:
    opt = ClassicAdamW(_params())
    assert opt.defaults == {
        "lr": 1e-3,
        "betas": (0.9, 0.999),
        "eps": 1e-6,
        "weight_decay": 0.0,
        "correct_bias": True,
    }


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"lr": -1.0}, ValueError, r"Invalid learning rate: -1.0 - should be >= 0.0"),
        ({"lr": float("nan")}, ValueError, r"Invalid learning rate: nan"),
        (
            {"betas": (1.0, 0.999)},
            ValueError,
            r"Invalid beta parameter: 1.0 - should be in \[0.0, 1.0\)",
        ),
        ({"betas": (0.9, -0.1)}, ValueError, r"Invalid beta parameter: -0.1"),
        ({"betas": (0.9,)}, ValueError, r"Invalid betas: \(0.9,\)"),
        ({"eps": -1e-8}, ValueError, r"Invalid epsilon value: -1e-08 - should be >= 0.0"),
        ({"weight_decay": -0.1}, ValueError, r"Invalid weight_decay value: -0.1"),
        ({"lr": "0.1"}, TypeError, r"`learning rate` must be a number, got str: '0.1'"),
    ],
)
def test_invalid_arguments(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        ClassicAdamW(_params(), **kwargs)


def test_sparse_gradient_raises() -> None:
    w = torch.nn.Parameter(torch.randn(4, 3))
    w.grad = torch.randn(4, 3).to_sparse()
    with pytest.raises(RuntimeError, match="sparse gradients; use sparse_adam"):
        ClassicAdamW([w]).step()


def _train(opt: torch.optim.Optimizer, params: list[torch.Tensor], steps: range) -> None:
    for step in steps:
        for p, g in zip(params, _grads(step, params), strict=True):
            p.grad = g
        opt.step()


def test_state_dict_round_trip_is_bit_identical(tmp_path: Path) -> None:
    params = _params()
    opt = ClassicAdamW(params, lr=1e-2, weight_decay=0.1)
    _train(opt, params, range(3))
    path = tmp_path / "ckpt.pt"
    torch.save({"params": [p.detach() for p in params], "opt": opt.state_dict()}, path)
    _train(opt, params, range(3, 7))

    saved = torch.load(path, weights_only=True)
    fresh = [torch.nn.Parameter(t.clone()) for t in saved["params"]]
    reopt = ClassicAdamW(fresh, lr=1e-2, weight_decay=0.1)
    reopt.load_state_dict(saved["opt"])
    assert reopt.state[fresh[0]]["step"] == 3
    _train(reopt, fresh, range(3, 7))
    for a, b in zip(params, fresh, strict=True):
        assert torch.equal(a.detach(), b.detach())


@pytest.mark.usefixtures("fresh_registry")
def test_registered_as_adamw_hf() -> None:
    model = torch.nn.Linear(3, 2)
    opt = optreg.get_optimizer("adamw_hf", model, lr=1e-2)
    assert type(opt) is ClassicAdamW
    assert len(opt.param_groups) == 1  # weight_decay defaults to 0: no split
    info = optreg.optimizer_info("adamw_hf")
    assert info.target == "optreg.builtin.adamw:ClassicAdamW"
    assert info.description
    with pytest.raises(TypeError, match="amsgrad"):
        optreg.get_optimizer("adamw_hf", model, amsgrad=True)


def test_complex_parameters_are_refused_by_name() -> None:
    """Its second moment is g*g, which is not |g|^2 for complex values: the loss stayed
    ~10 where 'adamw' (which views them as real) reaches 5e-13."""
    real = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match=r"adamw_hf does not support complex parameters: param "
                       r"group 0 has a torch.complex64 tensor of shape \(3,\)"):  # fmt: skip
        optreg.get_optimizer(
            "adamw_hf", [real, torch.nn.Parameter(torch.zeros(3, dtype=torch.cfloat))]
        )
    opt = optreg.get_optimizer("adamw_hf", [real])
    with pytest.raises(ValueError, match="param group 1 has a torch.complex64"):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(3, dtype=torch.cfloat))]})
    assert len(opt.param_groups) == 1
