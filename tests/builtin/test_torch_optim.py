"""The torch.optim family: names, descriptions, fast-by-default adamw / adam."""

from __future__ import annotations

import copy
import io
from typing import Any

import pytest
import torch
from helpers import pickle_round_trip

import optreg
from optreg.builtin.fused import fused_supported
from optreg.builtin.torch_optim import adam, adamw, adamw_torch_fused

_TORCH = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2])

pytestmark = pytest.mark.usefixtures("fresh_registry")

EXPECTED = {
    "adamw": torch.optim.AdamW,
    "adamw_torch": torch.optim.AdamW,
    "adamw_torch_fused": torch.optim.AdamW,
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop,
    "nadam": torch.optim.NAdam,
    "radam": torch.optim.RAdam,
    "adamax": torch.optim.Adamax,
    "adadelta": torch.optim.Adadelta,
    "asgd": torch.optim.ASGD,
    "rprop": torch.optim.Rprop,
    "sparse_adam": torch.optim.SparseAdam,
    "lbfgs": torch.optim.LBFGS,
}


def _params(*shapes: tuple[int, ...], dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [torch.nn.Parameter(torch.randn(s, generator=gen).to(dtype)) for s in shapes]


def _flags(opt: torch.optim.Optimizer) -> tuple[Any, Any]:
    group = opt.param_groups[0]
    return group["fused"], group["foreach"]


@pytest.mark.parametrize(("name", "cls"), sorted(EXPECTED.items()))
def test_every_name_builds_the_torch_class(name: str, cls: type) -> None:
    opt = optreg.get_optimizer(name, _params((3, 2), (2,)))
    assert type(opt) is cls
    info = optreg.optimizer_info(name)
    assert info.description
    assert "\n" not in info.description
    assert info.provider.startswith("optreg")


def test_adamw_torch_is_an_alias_of_adamw() -> None:
    assert "adamw_torch" in optreg.optimizer_info("adamw").aliases
    assert optreg.optimizer_info("adamw_torch").name == "adamw"


def test_adafactor_torch_available_where_torch_ships_it() -> None:
    """Listed everywhere (listing imports no torch); available from torch 2.5 on, and
    elsewhere unavailable with the reason."""
    assert "adafactor_torch" in optreg.list_optimizers()
    available, reason = optreg.optimizers.status(optreg.optimizers["adafactor_torch"])
    assert available == hasattr(torch.optim, "Adafactor")
    if not available:
        assert reason is not None and "needs torch>=2.5" in reason
        with pytest.raises(optreg.MissingDependencyError, match="needs torch>=2.5"):
            optreg.get_optimizer("adafactor_torch", _params((4, 3)))
    if hasattr(torch.optim, "Adafactor"):
        opt = optreg.get_optimizer("adafactor_torch", _params((4, 3)))
        assert type(opt) is torch.optim.Adafactor


def test_every_torch_optim_name_has_a_one_line_description() -> None:
    from optreg.builtin import TORCH_OPTIM

    for name in (n.name for n in TORCH_OPTIM.optimizers):
        description = optreg.optimizer_info(name).description
        assert description
        assert "\n" not in description


# ---- fast by default ------------------------------------------------------------


@pytest.mark.parametrize("factory", [adamw, adam])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_fused_chosen_for_floating_cpu_params(factory: Any, dtype: torch.dtype) -> None:
    opt = factory(_params((4, 3), (3,), dtype=dtype))
    assert _flags(opt) == (True, None)
    assert opt.defaults["fused"] is True


@pytest.mark.parametrize("factory", [adamw, adam])
@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"fused": False}, (False, None)),
        ({"foreach": True}, (None, True)),
        ({"foreach": False}, (None, False)),
        ({"differentiable": True}, (None, None)),
        ({"capturable": True}, (None, None)),
    ],
)
def test_explicit_flags_are_respected(
    factory: Any, kwargs: dict[str, Any], expected: tuple[Any, Any]
) -> None:
    opt = factory(_params((4, 3)), **kwargs)
    assert _flags(opt) == expected


def test_complex_param_keeps_torch_default() -> None:
    params = [torch.nn.Parameter(torch.randn(3, dtype=torch.complex64)), *_params((2,))]
    assert _flags(adamw(params)) == (None, None)


def test_tensor_subclass_keeps_torch_default() -> None:
    class Sub(torch.Tensor):
        pass

    sub = torch.randn(3).as_subclass(Sub).requires_grad_()
    assert not fused_supported([sub])
    assert fused_supported([torch.randn(3)])


def test_meta_device_is_not_fused() -> None:
    assert not fused_supported([torch.empty(3, device="meta")])
    assert not fused_supported([])


def test_generator_params_are_consumed_once() -> None:
    params = _params((4, 3), (3,))
    opt = adamw(p for p in params)
    assert _flags(opt) == (True, None)
    assert opt.param_groups[0]["params"] == params


def test_groups_with_generators_and_named_pairs() -> None:
    params = _params((4, 3), (3,), (2,))
    groups = [
        {"params": (p for p in params[:2]), "weight_decay": 0.0},
        {"params": params[2], "lr": 0.1},
    ]
    opt = adamw(groups)
    assert _flags(opt) == (True, None)
    assert [len(g["params"]) for g in opt.param_groups] == [2, 1]
    assert opt.param_groups[1]["lr"] == 0.1


@pytest.mark.skipif(_TORCH < (2, 6), reason="torch < 2.6 optimizers take no (name, tensor) pairs")
def test_named_pairs() -> None:
    params = _params((4, 3), (3,))
    named = adam([("w", params[0]), ("b", params[1])])
    assert _flags(named) == (True, None)


def test_mixed_group_with_complex_is_not_fused() -> None:
    complex_param = torch.nn.Parameter(torch.randn(2, dtype=torch.complex64))
    opt = adam([{"params": _params((3,))}, {"params": [complex_param]}])
    assert _flags(opt) == (None, None)


def test_adamw_torch_fused_always_fused() -> None:
    opt = adamw_torch_fused(_params((4, 3)))
    assert _flags(opt) == (True, None)
    complex_param = torch.nn.Parameter(torch.randn(2, dtype=torch.complex64))
    complex_param.grad = torch.ones_like(complex_param)
    # torch checks at the first step (at construction before 2.5)
    with pytest.raises(RuntimeError, match="fused=True"):  # noqa: PT012
        opt = adamw_torch_fused([complex_param])
        assert _flags(opt) == (True, None)
        opt.step()


def test_signatures_mirror_torch() -> None:
    import inspect

    for ours, theirs in ((adamw, torch.optim.AdamW), (adam, torch.optim.Adam)):
        mine = inspect.signature(ours).parameters
        torch_params = dict(inspect.signature(theirs).parameters)
        torch_params.pop("self", None)
        if "decoupled_weight_decay" in mine and "decoupled_weight_decay" not in torch_params:
            # torch < 2.6's Adam lacks it; optreg's adam passes it only when True
            assert mine["decoupled_weight_decay"].default is False
            mine = {k: v for k, v in mine.items() if k != "decoupled_weight_decay"}  # type: ignore[assignment]
        assert list(mine) == list(torch_params)
        for name, param in mine.items():
            assert param.default == torch_params[name].default, name
            assert param.kind == torch_params[name].kind, name


def _run(opt: torch.optim.Optimizer, params: list[torch.Tensor], steps: int = 5) -> None:
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen).to(p.dtype)
        opt.step()


@pytest.mark.parametrize(
    ("name", "cls", "kwargs"),
    [
        ("adamw", torch.optim.AdamW, {"lr": 1e-2, "weight_decay": 0.1}),
        ("adam", torch.optim.Adam, {"lr": 1e-2, "weight_decay": 0.1, "amsgrad": True}),
        ("adamw_torch_fused", torch.optim.AdamW, {"lr": 1e-2, "betas": (0.8, 0.9)}),
    ],
)
def test_results_equal_torch_fused_built_directly(
    name: str, cls: type, kwargs: dict[str, Any]
) -> None:
    ours = _params((5, 4), (4,))
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    opt = optreg.get_optimizer(name, ours, **kwargs)
    ref = cls(theirs, fused=True, **kwargs)
    _run(opt, ours)
    _run(ref, theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a, b)


def test_opt_out_equals_torch_default() -> None:
    ours = _params((5, 4), (4,))
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    opt = optreg.get_optimizer("adamw", ours, lr=1e-2, fused=False)
    ref = torch.optim.AdamW(theirs, lr=1e-2)
    assert _flags(opt) == (False, None)
    _run(opt, ours)
    _run(ref, theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a, b)


def test_module_gets_weight_decay_split_and_fused() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    opt = optreg.get_optimizer("adamw", model)
    assert type(opt) is torch.optim.AdamW
    assert [g["weight_decay"] for g in opt.param_groups] == [0.01, 0.0]
    assert all(g["fused"] is True for g in opt.param_groups)


def test_unknown_keyword_names_the_entry() -> None:
    with pytest.raises(
        TypeError, match=r"'adamw'.*unexpected keyword argument 'weight_decy'.*'weight_decay'"
    ):
        optreg.get_optimizer("adamw", _params((2,)), weight_decy=0.1)


def test_invalid_value_raises_torch_error() -> None:
    with pytest.raises(ValueError, match=r"-1\.0"):
        optreg.get_optimizer("adamw", _params((2,)), lr=-1.0)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1: 1.5"):
        adamw(_params((2,)), betas=(0.9, 1.5))


def test_state_dict_round_trip_is_bit_identical(tmp_path: Any) -> None:
    params = _params((5, 4), (4,))
    opt = optreg.get_optimizer("adamw", params, lr=1e-2)
    _run(opt, params, steps=3)
    path = tmp_path / "opt.pt"
    torch.save({"params": [p.detach() for p in params], "opt": opt.state_dict()}, path)
    _run(opt, params, steps=3)
    saved = torch.load(path, weights_only=True)
    fresh = [torch.nn.Parameter(t.clone()) for t in saved["params"]]
    reopt = optreg.get_optimizer("adamw", fresh, lr=1e-2)
    reopt.load_state_dict(copy.deepcopy(saved["opt"]))
    _run(reopt, fresh, steps=3)
    for a, b in zip(params, fresh, strict=True):
        assert torch.equal(a, b)


# ---------------------------------------------------------------- hardening (issue 15)


def _train(opt: torch.optim.Optimizer, params: list[torch.nn.Parameter], steps: range) -> None:
    for t in steps:
        for i, p in enumerate(params):
            p.grad = torch.full_like(p, 0.1 * (t + 1) * (i + 1)).sin()
        opt.step()


def test_nadam_bf16_resumes_bit_identically() -> None:
    """torch casts NAdam's float32 mu_product to the parameter's bfloat16 on load."""
    torch.manual_seed(0)
    start = [torch.randn(5, 3, dtype=torch.bfloat16), torch.randn(3, dtype=torch.bfloat16)]
    ref = [torch.nn.Parameter(t.clone()) for t in start]
    opt = optreg.get_optimizer("nadam", ref, lr=1e-2)
    _train(opt, ref, range(6))
    run = [torch.nn.Parameter(t.clone()) for t in start]
    first = optreg.get_optimizer("nadam", run, lr=1e-2)
    _train(first, run, range(3))
    buf = io.BytesIO()
    torch.save(first.state_dict(), buf)
    buf.seek(0)
    resumed = optreg.get_optimizer("nadam", run, lr=1e-2)
    resumed.load_state_dict(torch.load(buf, weights_only=True))
    assert resumed.state[run[0]]["mu_product"].dtype == torch.float32
    assert type(resumed) is torch.optim.NAdam
    _train(resumed, run, range(3, 6))
    for p, q in zip(run, ref, strict=True):
        assert torch.equal(p, q)


def test_opting_out_of_the_fused_kernel_survives_loading_a_fused_checkpoint() -> None:
    fused_params = _params((4, 3), (3,))
    fused = optreg.get_optimizer("adamw", fused_params, lr=1e-2)
    assert fused.param_groups[0]["fused"] is True
    _train(fused, fused_params, range(2))
    plain = optreg.get_optimizer("adamw", fused_params, lr=1e-2, fused=False)
    plain.load_state_dict(fused.state_dict())
    assert plain.param_groups[0]["fused"] is False
    assert plain.param_groups[0]["lr"] == 1e-2
    assert len(plain.state) == 2


def test_optimizers_with_resume_hooks_still_pickle_and_copy() -> None:
    import copy

    params = _params((4, 3))
    for name in ("adamw", "adam", "nadam"):
        opt = optreg.get_optimizer(name, params, lr=1e-2)
        _train(opt, params, range(1))
        for again in (pickle_round_trip(opt), copy.deepcopy(opt)):
            assert type(again) is type(opt)
            assert len(again.state) == 1


# ---------------------------------------------------------------- strided (non-contiguous) params


def _strided_case() -> tuple[torch.nn.Parameter, torch.Tensor, torch.Tensor]:
    """timm's optimizer test's non-contiguous case: a (10, 5) view with stride (10, 2)."""
    gen = torch.Generator().manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(10, 5, 2, generator=gen)[..., 0])
    assert not weight.is_contiguous()
    return weight, torch.randn(5, generator=gen), torch.randn(10, generator=gen)


def _fit(
    opt: torch.optim.Optimizer, weight: torch.Tensor, x: torch.Tensor, t: torch.Tensor
) -> float:
    for _ in range(200):
        opt.zero_grad()
        loss = ((weight @ x - t) ** 2).sum()
        loss.backward()
        opt.step()
    return float(((weight.detach() @ x - t) ** 2).sum())


@pytest.mark.parametrize("name", ["adamw", "adam"])
def test_strided_parameters_are_not_fused_by_default(name: str) -> None:
    weight, x, t = _strided_case()
    reference = torch.nn.Parameter(weight.detach().clone())  # contiguous copy, same values
    start = float(((reference.detach() @ x - t) ** 2).sum())
    cls = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}[name]
    opt = optreg.get_optimizer(name, [weight], lr=1e-2)
    assert not opt.param_groups[0]["fused"]
    loss = _fit(opt, weight, x, t)
    expected = _fit(cls([reference], lr=1e-2, foreach=True), reference, x, t)
    assert loss < start / 10  # the fused kernel climbs here (from 15.7 to 15.4 in timm's test)
    assert torch.allclose(weight, reference, rtol=1e-5, atol=1e-6)
    assert loss == pytest.approx(expected, rel=1e-3, abs=1e-6)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("adamw_torch_fused", {}), ("adamw", {"fused": True}), ("adam", {"fused": True})],
)
def test_asking_for_fused_on_a_strided_parameter_raises(name: str, kwargs: dict[str, Any]) -> None:
    weight, _, _ = _strided_case()
    with pytest.raises(
        ValueError,
        match=rf"optimizer '{name}': torch's fused kernel mis-updates.*"
        r"param group 0 holds one at index 1 \(shape \[10, 5\], stride \(10, 2\)\)",
    ):
        optreg.get_optimizer(name, [torch.nn.Parameter(torch.zeros(3)), weight], **kwargs)


def test_a_group_added_later_with_a_strided_parameter_steps_unfused() -> None:
    weight, x, t = _strided_case()
    reference = torch.nn.Parameter(weight.detach().clone())
    opt = optreg.get_optimizer("adamw", [torch.nn.Parameter(torch.zeros(3))], lr=1e-2)
    assert opt.param_groups[0]["fused"] is True
    opt.add_param_group({"params": [weight]})
    loss = _fit(opt, weight, x, t)
    assert opt.param_groups[0]["fused"] is True and opt.param_groups[1]["fused"] is False
    ref_loss = _fit(torch.optim.AdamW([reference], lr=1e-2, foreach=True), reference, x, t)
    assert loss == pytest.approx(ref_loss, rel=1e-3, abs=1e-6)


def test_a_strided_group_added_to_an_asked_for_fused_optimizer_raises_at_step() -> None:
    weight, x, t = _strided_case()
    opt = optreg.get_optimizer("adamw_torch_fused", [torch.nn.Parameter(torch.zeros(3))])
    opt.add_param_group({"params": [weight]})
    ((weight @ x - t) ** 2).sum().backward()
    before = weight.detach().clone()
    with pytest.raises(ValueError, match="param group 1 holds one at index 0"):
        opt.step()
    assert torch.equal(weight, before)
