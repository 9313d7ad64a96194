"""Adafactor and AdafactorSchedule, against a per-parameter reference from the math."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import torch

import optreg
from optreg.builtin import adafactor_math
from optreg.builtin.adafactor import Adafactor, adafactor_lr
from optreg.builtin.adafactor_schedule import AdafactorSchedule, get_adafactor_schedule


class Reference:
    """Adafactor per parameter, written from REFERENCE.md, in float64."""

    def __init__(
        self,
        params: list[torch.Tensor],
        lr: float | None = None,
        eps: tuple[float, float] = (1e-30, 1e-3),
        clip_threshold: float = 1.0,
        decay_rate: float = -0.8,
        beta1: float | None = None,
        weight_decay: float = 0.0,
        scale_parameter: bool = True,
        relative_step: bool = True,
        warmup_init: bool = False,
    ) -> None:
        self.params = [p.detach().double().clone() for p in params]
        self.lr, self.eps, self.d, self.decay = lr, eps, clip_threshold, decay_rate
        self.beta1, self.wd = beta1, weight_decay
        self.scale, self.relative, self.warmup = scale_parameter, relative_step, warmup_init
        self.t = [0] * len(params)
        self.row: list[Any] = [None] * len(params)
        self.col: list[Any] = [None] * len(params)
        self.v: list[Any] = [None] * len(params)
        self.m: list[Any] = [None] * len(params)
        self.lr_t: list[float] = [0.0] * len(params)

    def step(self, grads: list[torch.Tensor | None]) -> None:
        for i, grad in enumerate(grads):
            if grad is None:
                continue
            g = grad.double()
            p = self.params[i]
            self.t[i] += 1
            t = self.t[i]
            rms = (p.pow(2).sum() / p.numel()).sqrt().item()
            if self.relative:
                rho = min(1e-6 * t if self.warmup else 1e-2, 1 / math.sqrt(t))
            else:
                assert self.lr is not None
                rho = self.lr
            lr_t = rho * (max(self.eps[1], rms) if self.scale else 1.0)
            self.lr_t[i] = lr_t
            b2 = 1 - t**self.decay
            u = g * g + self.eps[0]
            if g.dim() >= 2:
                if self.row[i] is None:
                    self.row[i] = torch.zeros(g.shape[:-1], dtype=torch.float64)
                    self.col[i] = torch.zeros(g.shape[:-2] + g.shape[-1:], dtype=torch.float64)
                self.row[i] = b2 * self.row[i] + (1 - b2) * u.mean(-1)
                self.col[i] = b2 * self.col[i] + (1 - b2) * u.mean(-2)
                r = (self.row[i] / self.row[i].mean(-1, keepdim=True)).rsqrt().unsqueeze(-1)
                c = self.col[i].rsqrt().unsqueeze(-2)
                u = r * c * g
            else:
                if self.v[i] is None:
                    self.v[i] = torch.zeros_like(g)
                self.v[i] = b2 * self.v[i] + (1 - b2) * u
                u = self.v[i].rsqrt() * g
            rms_u = (u.pow(2).sum() / u.numel()).sqrt().item()
            u = u / max(1.0, rms_u / self.d)
            u = u * lr_t
            if self.beta1 is not None:
                if self.m[i] is None:
                    self.m[i] = torch.zeros_like(g)
                self.m[i] = self.beta1 * self.m[i] + (1 - self.beta1) * u
                u = self.m[i]
            if self.wd != 0:
                p = p - self.wd * lr_t * p
            self.params[i] = p - u


SHAPES = [(12, 7), (7,), (3, 4, 5), (), (1, 9), (40, 30)]


def _params(dtype: torch.dtype = torch.float32, shapes: list[Any] = SHAPES) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [torch.nn.Parameter(torch.randn(s, generator=gen).to(dtype)) for s in shapes]


def _grads(step: int, params: list[torch.Tensor]) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(1000 + step)
    return [(torch.randn(p.shape, generator=gen) * 0.1).to(p.dtype) for p in params]


def _close(params: list[torch.Tensor], ref: Reference, rtol: float = 1e-5) -> None:
    for p, r in zip(params, ref.params, strict=True):
        torch.testing.assert_close(p.detach().double(), r, rtol=rtol, atol=rtol * 1e-2)


def _against_reference(
    params: list[torch.Tensor], config: dict[str, Any], steps: int, rtol: float = 1e-5
) -> tuple[Adafactor, Reference]:
    """``steps`` steps of Adafactor and the reference on the same gradients, then their
    parameters compared within ``rtol``."""
    ref = Reference(params, **config)
    opt = Adafactor(params, **config)
    for step in range(steps):
        grads = _grads(step, params)
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        opt.step()
        ref.step(list(grads))
    _close(params, ref, rtol)
    return opt, ref


CONFIGS = {
    "default": {},
    "beta1": {"beta1": 0.9},
    "weight_decay": {"weight_decay": 0.1},
    "beta1_weight_decay": {"beta1": 0.8, "weight_decay": 0.05},
    "warmup_init": {"warmup_init": True},
    "no_scale": {"scale_parameter": False},
    "external_lr": {"lr": 1e-2, "relative_step": False},
    "external_lr_no_scale": {"lr": 1e-2, "relative_step": False, "scale_parameter": False},
    "clip": {"clip_threshold": 0.05, "beta1": 0.5},
    "eps_decay": {"eps": (1e-20, 1e-2), "decay_rate": -0.5},
}


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_matches_reference(config: dict[str, Any]) -> None:
    params = _params()
    opt, ref = _against_reference(params, config, 10)
    for p, lr_t in zip(params, ref.lr_t, strict=True):
        assert adafactor_lr(opt.param_groups[0], opt.state[p]) == pytest.approx(lr_t, rel=1e-6)


def test_clipping_is_active_in_the_clip_config() -> None:
    """The clip config must actually clip, or the test above would not cover it."""
    params = _params()
    clipped = Adafactor([p.detach().clone().requires_grad_() for p in params], clip_threshold=0.05)
    free = Adafactor([p.detach().clone().requires_grad_() for p in params], clip_threshold=1e9)
    for opt in (clipped, free):
        group = opt.param_groups[0]["params"]
        for p, g in zip(group, _grads(0, params), strict=True):
            p.grad = g
        opt.step()
    a = clipped.param_groups[0]["params"][0]
    b = free.param_groups[0]["params"][0]
    assert not torch.allclose(a, b)


def test_fp64_params_keep_fp64_state() -> None:
    params = _params(torch.float64)
    opt, _ = _against_reference(params, {"beta1": 0.9}, 5, rtol=1e-12)
    assert opt.state[params[0]]["exp_avg_sq_row"].dtype == torch.float64


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("config", [{}, {"beta1": 0.9, "weight_decay": 0.1}])
def test_low_precision_params_update_through_fp32(
    dtype: torch.dtype, config: dict[str, Any]
) -> None:
    """A bf16/fp16 step is the fp32 step on the same values, rounded once at the end."""
    low = _params(dtype)
    wide = [torch.nn.Parameter(p.detach().float()) for p in low]
    opt_low = Adafactor(low, **config)
    opt_wide = Adafactor(wide, **config)
    for step in range(6):
        grads = _grads(step, low)
        for p, q, g in zip(low, wide, grads, strict=True):
            p.grad = g
            q.grad = g.float()
        opt_low.step()
        opt_wide.step()
        with torch.no_grad():
            for q in wide:  # what the low-precision parameter stores
                q.copy_(q.to(dtype).float())
    for p, q in zip(low, wide, strict=True):
        assert p.dtype == dtype
        assert torch.equal(p.detach().float(), q.detach())
    state = opt_low.state[low[0]]
    assert state["exp_avg_sq_row"].dtype == torch.float32
    assert state["RMS"].dtype == torch.float32


def test_state_keys_and_shapes() -> None:
    params = _params(shapes=[(4, 3), (3,), (2, 4, 3)])
    opt = Adafactor(params, beta1=0.9)
    for p, g in zip(params, _grads(0, params), strict=True):
        p.grad = g
    opt.step()
    s2d, s1d, s3d = (opt.state[p] for p in params)
    assert list(s2d) == ["step", "exp_avg", "exp_avg_sq_row", "exp_avg_sq_col", "RMS"]
    assert list(s1d) == ["step", "exp_avg", "exp_avg_sq", "RMS"]
    assert s2d["step"] == 1
    assert s2d["exp_avg_sq_row"].shape == (4,)
    assert s2d["exp_avg_sq_col"].shape == (3,)
    assert s3d["exp_avg_sq_row"].shape == (2, 4)
    assert s3d["exp_avg_sq_col"].shape == (2, 3)
    assert s1d["exp_avg_sq"].shape == (3,)
    no_beta = Adafactor(_params(shapes=[(2, 2)]))
    p = no_beta.param_groups[0]["params"][0]
    p.grad = torch.ones_like(p)
    no_beta.step()
    assert "exp_avg" not in no_beta.state[p]


def test_rms_state_is_the_parameter_rms_before_the_step() -> None:
    params = _params(shapes=[(5, 4), (6,)])
    before = [p.detach().double().pow(2).mean().sqrt().item() for p in params]
    opt = Adafactor(params)
    for p, g in zip(params, _grads(0, params), strict=True):
        p.grad = g
    opt.step()
    for p, rms in zip(params, before, strict=True):
        assert opt.state[p]["RMS"].item() == pytest.approx(rms, rel=1e-6)


def test_params_with_different_step_counts() -> None:
    params = _params()
    ref = Reference(params, beta1=0.9)
    opt = Adafactor(params, beta1=0.9)
    for step in range(6):
        grads: list[torch.Tensor | None] = list(_grads(step, params))
        if step < 2:
            grads[0] = None
            grads[1] = None
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        opt.step()
        ref.step(grads)
    assert opt.state[params[0]]["step"] == 4
    assert opt.state[params[2]]["step"] == 6
    _close(params, ref)


def test_param_groups_with_own_options() -> None:
    a, b = _params(shapes=[(6, 5)]), _params(shapes=[(5,), (3, 3)])
    ref_a = Reference(a)
    ref_b = Reference(b, lr=1e-2, relative_step=False, beta1=0.9)
    opt = Adafactor(
        [{"params": a}, {"params": b, "lr": 1e-2, "relative_step": False, "beta1": 0.9}]
    )
    for step in range(4):
        for group, ref in ((a, ref_a), (b, ref_b)):
            grads = _grads(step, group)
            for p, g in zip(group, grads, strict=True):
                p.grad = g
            ref.step(list(grads))
        opt.step()
    _close(a, ref_a)
    _close(b, ref_b)


def test_closure_and_skipped_params() -> None:
    w = torch.nn.Parameter(torch.tensor([[1.0, -2.0], [0.5, 3.0]]))
    idle = torch.nn.Parameter(torch.ones(3))
    opt = Adafactor([w, idle])

    def closure() -> torch.Tensor:
        opt.zero_grad()
        assert torch.is_grad_enabled()
        loss = (w**2).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == pytest.approx(14.25)
    assert idle not in opt.state
    assert torch.equal(idle.detach(), torch.ones(3))
    assert opt.step() is None


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"lr": 1e-3},
            ValueError,
            r"Cannot combine manual `lr` and `relative_step=True`.*lr=0.001",
        ),
        (
            {"warmup_init": True, "relative_step": False, "lr": 1e-3},
            ValueError,
            r"`warmup_init=True` requires `relative_step=True`",
        ),
        (
            {"relative_step": False},
            ValueError,
            r"`relative_step=False` requires a learning rate `lr`, got None",
        ),
        ({"lr": -1e-3, "relative_step": False}, ValueError, r"`lr` must be >= 0, got -0.001"),
        (
            {"lr": float("nan"), "relative_step": False},
            ValueError,
            r"`lr` must be a finite number >= 0, got nan",
        ),
        ({"eps": (1e-30,)}, ValueError, r"`eps` must be a pair \(eps1, eps2\), got \(1e-30,\)"),
        ({"eps": (-1.0, 1e-3)}, ValueError, r"`eps` values must be >= 0, got \(-1.0, 0.001\)"),
        ({"clip_threshold": 0.0}, ValueError, r"`clip_threshold` must be > 0, got 0.0"),
        ({"decay_rate": 0.5}, ValueError, r"`decay_rate` must be <= 0, got 0.5"),
        ({"beta1": 1.0}, ValueError, r"`beta1` must be in \[0, 1\), got 1.0"),
        ({"weight_decay": -0.1}, ValueError, r"`weight_decay` must be >= 0, got -0.1"),
        ({"clip_threshold": "1"}, TypeError, r"`clip_threshold` must be a number, got str: '1'"),
    ],
)
def test_invalid_arguments(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        Adafactor(_params(), **kwargs)


def test_sparse_gradient_raises() -> None:
    w = torch.nn.Parameter(torch.randn(4, 3))
    w.grad = torch.randn(4, 3).to_sparse()
    with pytest.raises(RuntimeError, match="Adafactor does not support sparse gradients"):
        Adafactor([w]).step()


def _train(opt: torch.optim.Optimizer, params: list[torch.Tensor], steps: range) -> None:
    for step in steps:
        for p, g in zip(params, _grads(step, params), strict=True):
            p.grad = g
        opt.step()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_state_dict_round_trip_is_bit_identical(tmp_path: Path, dtype: torch.dtype) -> None:
    config = {"beta1": 0.9, "weight_decay": 0.01}
    params = _params(dtype)
    opt = Adafactor(params, **config)
    _train(opt, params, range(3))
    path = tmp_path / "ckpt.pt"
    torch.save({"params": [p.detach() for p in params], "opt": opt.state_dict()}, path)
    _train(opt, params, range(3, 7))

    saved = torch.load(path, weights_only=True)
    fresh = [torch.nn.Parameter(t.clone()) for t in saved["params"]]
    reopt = Adafactor(fresh, **config)
    reopt.load_state_dict(saved["opt"])
    state = reopt.state[fresh[0]]
    assert state["step"] == 3
    assert state["exp_avg_sq_row"].dtype == torch.float32
    assert state["exp_avg"].dtype == torch.float32
    _train(reopt, fresh, range(3, 7))
    for a, b in zip(params, fresh, strict=True):
        assert torch.equal(a.detach(), b.detach())


def test_workspace_is_not_state() -> None:
    params = _params()
    opt = Adafactor(params)
    _train(opt, params, range(1))
    assert opt._workspace
    assert set(opt.state_dict()) == {"state", "param_groups"}
    keys = {k for s in opt.state_dict()["state"].values() for k in s}
    assert keys == {"step", "RMS", "exp_avg_sq_row", "exp_avg_sq_col", "exp_avg_sq"}


# ---- AdafactorSchedule ------------------------------------------------------------


def test_schedule_reports_base_lr_then_lr_t() -> None:
    params = _params()
    ref = Reference(params, warmup_init=True)
    opt = Adafactor(params, warmup_init=True)
    sched = AdafactorSchedule(opt, initial_lr=1e-3)
    assert sched.get_last_lr() == [1e-3]
    assert sched.base_lrs == [1e-3]
    assert "initial_lr" not in opt.param_groups[0]
    for step in range(3):
        grads = _grads(step, params)
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        opt.step()
        ref.step(list(grads))
        sched.step()
        (lr,) = sched.get_last_lr()
        assert isinstance(lr, float)
        assert lr == pytest.approx(ref.lr_t[0], rel=1e-6)
        expected = 1e-6 * (step + 1) * max(1e-3, opt.state[params[0]]["RMS"].item())
        assert lr == pytest.approx(expected, rel=1e-6)


def test_schedule_per_group_and_group_without_grad() -> None:
    a, b = _params(shapes=[(4, 3)]), _params(shapes=[(5,)])
    opt = Adafactor([{"params": a}, {"params": b}])
    sched = get_adafactor_schedule(opt)
    assert sched.get_last_lr() == [0.0, 0.0]
    a[0].grad = torch.ones_like(a[0])
    opt.step()
    sched.step()
    lr_a, lr_b = sched.get_last_lr()
    assert lr_a == pytest.approx(1e-2 * max(1e-3, opt.state[a[0]]["RMS"].item()), rel=1e-6)
    assert lr_b == 0.0  # its first parameter was never stepped


def test_schedule_state_dict_round_trip(tmp_path: Path) -> None:
    params = _params()
    opt = Adafactor(params)
    sched = AdafactorSchedule(opt)
    for step in range(2):
        _train(opt, params, range(step, step + 1))
        sched.step()
    path = tmp_path / "sched.pt"
    torch.save(sched.state_dict(), path)
    fresh = AdafactorSchedule(Adafactor(_params()))
    fresh.load_state_dict(torch.load(path, weights_only=True))
    assert fresh.last_epoch == 2
    assert fresh.get_last_lr() == sched.get_last_lr()


def test_schedule_rejects_external_lr_and_other_optimizers() -> None:
    with pytest.raises(
        ValueError, match="relative_step=True, param group 0 has relative_step=False"
    ):
        AdafactorSchedule(Adafactor(_params(), lr=1e-3, relative_step=False))
    with pytest.raises(TypeError, match="needs an Adafactor optimizer; param group 0 of SGD lacks"):
        AdafactorSchedule(torch.optim.SGD(_params(), lr=0.1))


def test_transformers_compatible_get_lr() -> None:
    params = _params(shapes=[(3, 3)])
    opt = Adafactor(params, scale_parameter=False)
    _train(opt, params, range(4))
    assert Adafactor._get_lr(opt.param_groups[0], opt.state[params[0]]) == 1e-2 * 1.0
    assert adafactor_lr(opt.param_groups[0], {"step": 10_000, "RMS": 1.0}) == 1e-2


# ---- registry -----------------------------------------------------------------


@pytest.mark.usefixtures("fresh_registry")
def test_registered_names() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    opt = optreg.get_optimizer("adafactor", model, lr=1e-3, relative_step=False)
    assert type(opt) is Adafactor
    assert optreg.optimizer_info("adafactor").target == "optreg.builtin.adafactor:Adafactor"
    sched = optreg.get_scheduler(
        "adafactor", optreg.get_optimizer("adafactor", model), num_warmup_steps=10
    )
    assert type(sched) is AdafactorSchedule
    assert optreg.scheduler_info("adafactor").description
    with pytest.raises(TypeError, match="beta2"):
        optreg.get_optimizer("adafactor", model, beta2=0.9)


class _Subclass(torch.Tensor):
    """Stands in for DTensor: a tensor subclass takes the per-parameter path."""


@pytest.mark.parametrize(
    "config", [{}, {"beta1": 0.9, "weight_decay": 0.1}, CONFIGS["external_lr"]]
)
def test_tensor_subclass_params_match_reference(config: dict[str, Any]) -> None:
    plain = _params()
    params = [torch.nn.Parameter(p.detach().clone().as_subclass(_Subclass)) for p in plain]
    assert all(type(p) is _Subclass for p in params)
    ref = Reference(plain, **config)
    opt = Adafactor(params, **config)
    for step in range(6):
        grads = _grads(step, plain)
        for p, g in zip(params, grads, strict=True):
            p.grad = g.as_subclass(_Subclass)
        opt.step()
        ref.step(list(grads))
    _close([p.as_subclass(torch.Tensor) for p in params], ref)
    state = opt.state[params[0]]
    assert {"step", "RMS", "exp_avg_sq_row", "exp_avg_sq_col"} <= set(state)
    assert state["exp_avg_sq_row"].shape == (12,)


def test_bfloat16_subclass_param_updates_through_fp32() -> None:
    low = _params(torch.bfloat16, shapes=[(6, 5), (5,)])
    params = [torch.nn.Parameter(p.detach().clone().as_subclass(_Subclass)) for p in low]
    opt_sub, opt_plain = Adafactor(params), Adafactor(low)
    for step in range(3):
        for p, q, g in zip(params, low, _grads(step, low), strict=True):
            p.grad = g.as_subclass(_Subclass)
            q.grad = g
        opt_sub.step()
        opt_plain.step()
    for p, q in zip(params, low, strict=True):
        assert p.dtype == torch.bfloat16
        torch.testing.assert_close(
            p.as_subclass(torch.Tensor).float(), q.detach().float(), rtol=1e-2, atol=1e-3
        )


def test_complex_parameters_are_refused_at_construction() -> None:
    z = torch.nn.Parameter(torch.zeros(3, 2, dtype=torch.complex64))
    with pytest.raises(ValueError) as info:
        Adafactor([torch.nn.Parameter(torch.zeros(2)), z])
    assert str(info.value).startswith(
        "Adafactor does not support complex parameters: param group 0 has a torch.complex64 "
        "tensor of shape (3, 2)"
    )


@pytest.mark.parametrize(
    "grouping",
    [{"overrides": {"weight": {"lr": 1e-3}}}, {"rules": [{"ndim": 2, "lr": 1e-3}]}],
)
def test_a_group_lr_with_relative_step_is_refused_as_the_keyword_is(grouping: Any) -> None:
    with pytest.raises(ValueError, match=r"Cannot combine manual `lr` and `relative_step=True` "
                       r"options: param group \d has lr=0.001 \(from overrides or rules\)"):  # fmt: skip
        optreg.get_optimizer("adafactor", torch.nn.Linear(3, 3), **grouping)
    opt = optreg.get_optimizer("adafactor", [torch.nn.Parameter(torch.zeros(2))])
    with pytest.raises(ValueError, match="param group 1 has lr=0.1"):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(2))], "lr": 0.1})
    assert len(opt.param_groups) == 1


# ---- the blocked factored update, the step count, compile --------------------------


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_small_blocks_match_reference(monkeypatch: pytest.MonkeyPatch, config: Any) -> None:
    """Blocks of a few rows (the (40, 30) parameter in 40 of them, the 3-D one a row of
    each matrix at a time) give the reference's result, as one block does."""
    monkeypatch.setattr(adafactor_math, "BLOCK", 30)
    assert adafactor_math.block_rows(1, 40, 30) == 1
    assert adafactor_math.block_rows(3, 4, 5) == 2
    _against_reference(_params(), config, 6)


def test_workspace_holds_one_block_not_the_parameter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adafactor_math, "BLOCK", 64)
    params = _params(shapes=[(50, 16), (2, 40, 8)])
    opt = Adafactor(params)
    _train(opt, params, range(2))
    (workspace,) = opt._workspace.values()
    assert workspace.numel() == 64  # 4 rows of 16; 4 rows of 2 x 8


def test_non_contiguous_parameters_match_reference() -> None:
    base = _params(shapes=[(7, 12), (30, 40)])
    params = [torch.nn.Parameter(p.detach().t()) for p in base]  # transposed views
    assert not any(p.is_contiguous() for p in params)
    _against_reference(params, {"beta1": 0.9}, 4)
    assert not params[0].is_contiguous()


def test_rms_is_accurate_for_large_tensors() -> None:
    """The RMS of 4M values (the parameter's, and the update's for clipping) is within
    1e-6 of float64; a flat float32 norm on the CPU drifts by ~1e-4 at this size."""
    gen = torch.Generator().manual_seed(0)
    for t in (torch.randn(2048, 2048, generator=gen), torch.randn(1 << 22, generator=gen)):
        truth = t.double().pow(2).mean().sqrt().item()
        assert adafactor_math.rms(t).item() == pytest.approx(truth, rel=1e-6)
        assert adafactor_math.rms_all([torch.ones(3), t])[1].item() == pytest.approx(
            truth, rel=1e-6
        )


def test_step_is_a_tensor_and_a_saved_number_still_loads() -> None:
    """The step count is a float64 tensor; a state dict that saved it as a number (optreg
    before 0.3, transformers' Adafactor) loads and steps as the tensor one does."""
    config = {"beta1": 0.9}
    params = _params()
    opt = Adafactor(params, **config)
    _train(opt, params, range(3))
    step = opt.state[params[0]]["step"]
    assert isinstance(step, torch.Tensor) and step.dtype == torch.float64 and step == 3
    saved = copy.deepcopy(opt.state_dict())
    as_numbers = copy.deepcopy(saved)
    for state in as_numbers["state"].values():
        state["step"] = int(state["step"])
    results = []
    for state_dict in (saved, as_numbers):
        fresh = [torch.nn.Parameter(p.detach().clone()) for p in params]
        reopt = Adafactor(fresh, **config)
        reopt.load_state_dict(state_dict)
        _train(reopt, fresh, range(3, 6))
        assert reopt.state[fresh[0]]["step"] == 6
        results.append(fresh)
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)


def _compiled_frames(
    eager_opt: Adafactor, compiled_opt: Adafactor, steps: int, schedules: tuple[Any, ...] = ()
) -> int:
    """Step one optimizer eagerly and the other under torch.compile (a counting backend)
    on the same gradients, each ``schedules`` entry after every step; check that the two
    agree and return the compiled step's frames (graphs and recompiles)."""
    from torch._dynamo.testing import CompileCounter

    eager = [p for group in eager_opt.param_groups for p in group["params"]]
    compiled = [p for group in compiled_opt.param_groups for p in group["params"]]
    torch._dynamo.reset()
    counter = CompileCounter()
    step = torch.compile(compiled_opt.step, backend=counter)
    try:
        for i in range(steps):
            for p, q, g in zip(eager, compiled, _grads(i, eager), strict=True):
                p.grad, q.grad = g, g.clone()
            eager_opt.step()
            step()
            for schedule in schedules:
                schedule.step()
    finally:
        torch._dynamo.reset()
    for p, q in zip(eager, compiled, strict=True):
        torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-7)
    return int(counter.frame_count)


@pytest.mark.parametrize("config", [{}, {"beta1": 0.9, "weight_decay": 0.1, "warmup_init": True}])
def test_compiled_step_does_not_recompile(config: dict[str, Any]) -> None:
    """Under torch.compile the step count and the scalars made from it are tensors, and
    the state and workspace exist before the first compiled step: one graph for every
    step, and the result of eager steps."""
    assert _compiled_frames(Adafactor(_params(), **config), Adafactor(_params(), **config), 6) == 1


def test_a_tensor_lr_is_filled_by_a_schedule_without_recompiles() -> None:
    opt_f = Adafactor(_params(), lr=1e-2, relative_step=False, beta1=0.9)
    opt_t = Adafactor(_params(), lr=torch.tensor(1e-2), relative_step=False, beta1=0.9)
    schedules = tuple(
        optreg.get_scheduler("cosine", opt, num_warmup_steps=2, num_training_steps=8)
        for opt in (opt_f, opt_t)
    )
    assert _compiled_frames(opt_f, opt_t, 8, schedules) == 1
    lr = opt_t.param_groups[0]["lr"]
    assert isinstance(lr, torch.Tensor) and lr.item() == pytest.approx(opt_f.param_groups[0]["lr"])


@pytest.mark.parametrize(
    ("lr", "message"),
    [
        (
            torch.tensor([1e-2, 1e-3]),
            r"`lr` as a tensor must hold one real number, got shape \(2,\)",
        ),
        (torch.tensor(-1.0), r"`lr` must be >= 0, got -1.0"),
    ],
)
def test_a_bad_tensor_lr_is_refused(lr: torch.Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Adafactor(_params(), lr=lr, relative_step=False)


def test_empty_parameters_step_as_no_ops() -> None:
    empty = [torch.nn.Parameter(torch.zeros(s)) for s in [(0, 4), (3, 0), (0,), (2, 0, 5)]]
    params = _params(shapes=[(5, 4), (4,)])
    opt = Adafactor([*empty, *params])
    ref = Reference(params)
    for step in range(3):
        grads = _grads(step, params)
        for p, g in zip([*empty, *params], [*_grads(step, empty), *grads], strict=True):
            p.grad = g
        opt.step()
        ref.step(list(grads))
    _close(params, ref)
    assert [tuple(p.shape) for p in empty] == [(0, 4), (3, 0), (0,), (2, 0, 5)]
    assert all(opt.state[p]["step"] == 3 for p in empty)
