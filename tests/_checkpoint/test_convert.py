"""optreg.convert_state_dict: bitsandbytes 8-bit / 32-bit <-> torch fp32 state (Adam, Lion).

Exact where no 8-bit layout is involved; else within the bounds the README quotes
(measured by benchmarks/bench_convert.py).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import torch

import optreg

# status() imports nothing: reading the signature at collection would import bitsandbytes
# before test_bnb checks what happens without it
pytestmark = pytest.mark.skipif(
    not optreg.optimizers.status(optreg.optimizers.resolve("adamw_8bit"))[0],
    reason="needs bitsandbytes",
)
WRAP = "__bnb_optimizer_quant_state__"


@pytest.fixture(autouse=True)
def _paged_on_cpu() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optreg.PagedFallbackWarning)
        yield


def _run(name: str, steps: int = 10, shape: tuple[int, ...] = (96, 96)) -> tuple[Any, Any]:
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(shape)), torch.nn.Parameter(torch.randn(7))]
    opt = optreg.get_optimizer(name, params, lr=1e-3, weight_decay=0.0)
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen)
        opt.step()
    return params, opt


def _moments(state: dict[str, Any]) -> list[torch.Tensor]:
    if "exp_avg" in state:
        return [state["exp_avg"], state["exp_avg_sq"]]
    inner = state[WRAP]
    return [inner[k] for k in ("state1", "state2") if k in inner]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / a.norm())


@pytest.mark.parametrize(
    ("fp32", "q8"),
    [("adamw", "adamw_8bit"), ("adam", "paged_adam_8bit"), ("lion_32bit", "lion_8bit")],
)
def test_fp32_to_8bit_and_back_is_close(fp32: str, q8: str) -> None:
    _, opt = _run(fp32)
    saved = opt.state_dict()
    quantised = optreg.convert_state_dict(saved, fp32, q8)
    big, small = (quantised["state"][i][WRAP] for i in (0, 1))
    assert big["state1"].dtype == torch.uint8 and big["state1"].shape == (96, 96)
    assert small["state1"].dtype == torch.float32  # under 4096 values: fp32, as bnb keeps it
    back = optreg.convert_state_dict(quantised, q8, fp32)
    for pid, bound in ((0, 0.02), (1, 0.0)):
        for a, b in zip(_moments(saved["state"][pid]), _moments(back["state"][pid]), strict=True):
            assert _rel(a, b) <= bound, (pid, _rel(a, b))
    assert int(back["state"][0]["step"]) == 10


def test_an_8bit_run_continues_in_fp32_and_back() -> None:
    params, opt = _run("adamw_8bit")
    state = optreg.convert_state_dict(opt.state_dict(), "adamw_8bit", "adamw_torch")  # an alias
    fp32 = optreg.get_optimizer("adamw", [p.detach().clone().requires_grad_() for p in params])
    fp32.load_state_dict(state)
    assert fp32.param_groups[0]["lr"] == 1e-3 and fp32.param_groups[0]["fused"] is True
    assert float(fp32.state_dict()["state"][0]["step"]) == 10.0
    for p in fp32.param_groups[0]["params"]:
        p.grad = torch.ones_like(p)
    fp32.step()
    again = optreg.convert_state_dict(fp32.state_dict(), "adamw", "adamw_8bit")
    q8 = optreg.get_optimizer("adamw_8bit", [p.detach().clone().requires_grad_() for p in params])
    q8.load_state_dict(again)
    for p in q8.param_groups[0]["params"]:
        p.grad = torch.ones_like(p)
    q8.step()
    assert q8.state[q8.param_groups[0]["params"][0]]["step"] == 12


def test_8bit_to_32bit_within_bitsandbytes_dequantises_exactly_what_bnb_holds() -> None:
    import bitsandbytes.functional as F

    _, opt = _run("lion_8bit")
    saved = opt.state_dict()["state"][0][WRAP]
    out = optreg.convert_state_dict(opt.state_dict(), "lion_8bit", "paged_lion_32bit")
    expected = F.dequantize_blockwise(
        saved["state1"], absmax=saved["absmax1"], code=saved["qmap1"], blocksize=256
    )
    assert torch.equal(out["state"][0][WRAP]["state1"], expected)


@pytest.mark.parametrize(
    ("source", "target", "match"),
    [
        ("adamw", "lion_8bit", r"cannot convert 'adamw' \(adam\) state to 'lion_8bit' \(lion\)"),
        ("sgd", "sgd_8bit", r"cannot convert the state of source optimizer 'sgd': conversions"),
        ("adamw", "rprop", r"cannot convert the state of target optimizer 'rprop'"),
    ],
)
def test_pairs_without_a_conversion(source: str, target: str, match: str) -> None:
    _, opt = _run("adamw")
    with pytest.raises(ValueError, match=match):
        optreg.convert_state_dict(opt.state_dict(), source, target)


def test_a_state_of_another_layout_is_named() -> None:
    _, opt = _run("adamw")
    with pytest.raises(ValueError, match=r"parameter 0 of the 'adamw_8bit' state lacks state1"):
        optreg.convert_state_dict(opt.state_dict(), "adamw_8bit", "adamw")


def _is_8bit(state: dict[str, Any]) -> bool:
    return bool(state[WRAP]["state1"].dtype == torch.uint8)


def test_the_target_optimizers_32bit_overrides_and_min_8bit_size_are_honoured() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(96, 96), torch.nn.Linear(96, 96))
    # the same groups on both sides (torch's load_state_dict needs them)
    fp32 = optreg.get_optimizer(
        "adamw", model, lr=1e-3, weight_decay=0.0, overrides={"0.": {"lr": 1e-3}}
    )
    model(torch.randn(4, 96)).pow(2).mean().backward()
    fp32.step()
    target = optreg.get_optimizer(
        "adamw_8bit", model, lr=1e-3, weight_decay=0.0, overrides={"0.": {"optim_bits": 32}}
    )
    state = optreg.convert_state_dict(fp32.state_dict(), "adamw", target)
    layout = [_is_8bit(state["state"][i]) for i in range(4)]
    # groups: [1.weight, 1.bias], then the override's [0.weight, 0.bias]. 1.weight: 8-bit;
    # 1.bias: under 4096 values; 0.weight, 0.bias: 32-bit by the override
    assert [p.shape for g in target.param_groups for p in g["params"]][:2] == [(96, 96), (96,)]
    assert target.param_groups[1]["params"][0] is model[0].weight
    assert layout == [True, False, False, False]
    target.load_state_dict(state)
    model(torch.randn(4, 96)).pow(2).mean().backward()
    target.step()  # bitsandbytes steps the layout it would have made itself
    assert [_is_8bit(target.state_dict()["state"][i]) for i in range(4)] == layout

    big = optreg.get_optimizer(
        "adamw_8bit", model, min_8bit_size=10_000, weight_decay=0.0, overrides={"0.": {"lr": 1e-3}}
    )
    state = optreg.convert_state_dict(fp32.state_dict(), "adamw", big)
    assert [_is_8bit(state["state"][i]) for i in range(4)] == [False] * 4
    by_name = optreg.convert_state_dict(fp32.state_dict(), "adamw", "adamw_8bit")
    assert [_is_8bit(by_name["state"][i]) for i in range(4)] == [True, False, True, False]


def test_a_target_optimizer_over_other_parameters_or_not_built_by_optreg_is_refused() -> None:
    _, opt = _run("adamw")
    other = optreg.get_optimizer("adamw_8bit", [torch.nn.Parameter(torch.zeros(96, 96))])
    with pytest.raises(
        ValueError,
        match=r"the state has param groups of \[2\] parameters, the "
        r"target optimizer \[1\]",
    ):
        optreg.convert_state_dict(opt.state_dict(), "adamw", other)
    import bitsandbytes as bnb

    bare = bnb.optim.AdamW8bit([torch.nn.Parameter(torch.zeros(96, 96))])
    with pytest.raises(
        TypeError,
        match=r"`target` must be an optimizer name or an optimizer "
        r"built by optreg.get_optimizer",
    ):
        optreg.convert_state_dict(opt.state_dict(), "adamw", bare)


def test_converting_to_a_paged_name_leaves_the_users_cpu_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from optreg.builtin import bnb as optreg_bnb

    monkeypatch.setattr(optreg_bnb._Once, "shown", False)
    _, opt = _run("adamw")
    optreg.convert_state_dict(opt.state_dict(), "adamw", "paged_adamw_8bit")
    with pytest.warns(optreg.PagedFallbackWarning, match="paged optimizers are not supported"):
        optreg.get_optimizer("paged_adamw_8bit", [torch.nn.Parameter(torch.zeros(3))])


def test_the_conversions_are_derived_from_the_catalogue() -> None:
    # the module under test: the table is listed in its errors, not public
    from optreg._checkpoint.convert import conversions
    from optreg.builtin import BNB_OPTIMIZERS

    table = conversions()
    assert table == {
        "adam": {
            "adam": "torch",
            "adamw": "torch",
            "adam_8bit": "8-bit",
            "adamw_8bit": "8-bit",
            "paged_adam_8bit": "8-bit",
            "paged_adamw_8bit": "8-bit",
            "paged_adamw_32bit": "32-bit",
        },
        "lion": {
            "lion_8bit": "8-bit",
            "paged_lion_8bit": "8-bit",
            "lion_32bit": "32-bit",
            "paged_lion_32bit": "32-bit",
        },
    }
    bits = {b.name: f"{b.bits}-bit" for b in BNB_OPTIMIZERS}
    for names in table.values():
        for name, layout in names.items():
            assert layout == "torch" or layout == bits[name]  # the catalogue's own width


def _read_twin(state: dict[str, Any], what: str) -> tuple[list[Any], int]:
    if "m" not in state:
        raise ValueError(f"{what} lacks m")
    return [state["m"].float(), state["v"].float()], int(state["t"])


def _write_twin(moments: list[Any], step: int, optimizer: Any, position: Any) -> dict[str, Any]:
    return {"m": moments[0].clone(), "v": moments[1].clone(), "t": step}


def _twin_adam(params: Any, lr: float = 1e-3) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr)  # the layout is what this test converts


_twin_adam.optreg_contract = optreg.FactoryContract(  # type: ignore[attr-defined]
    state=optreg.StateLayout("adam", "twin", _read_twin, _write_twin)
)


def test_a_plugins_declared_layout_converts_with_the_builtins(fresh_registry: Any) -> None:
    """Conversion reads each name's contract, not a list of bitsandbytes classes: a
    plugin name that declares an Adam layout converts to and from torch's and 8-bit."""
    optreg.register_optimizer("twin_adam", _twin_adam)
    _, opt = _run("adamw")
    saved = opt.state_dict()
    twin = optreg.convert_state_dict(saved, "adamw", "twin_adam")
    assert sorted(twin["state"][0]) == ["m", "t", "v"] and twin["state"][0]["t"] == 10
    assert torch.equal(twin["state"][0]["m"], saved["state"][0]["exp_avg"])
    back = optreg.convert_state_dict(twin, "twin_adam", "adamw")
    for pid in (0, 1):
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(back["state"][pid][key], saved["state"][pid][key])
    q8 = optreg.convert_state_dict(twin, "twin_adam", "adamw_8bit")
    assert _is_8bit(q8["state"][0])
    with pytest.raises(ValueError, match=r"parameter 0 of the 'twin_adam' state lacks m"):
        optreg.convert_state_dict(saved, "twin_adam", "adamw")
    with pytest.raises(ValueError, match=r"declare a state layout \(optreg.FactoryContract"):
        optreg.convert_state_dict(saved, "adamw", "sgd")
