"""optreg.builtin.muon_batched: torch's Muon step with same-shape matrices batched."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from helpers import needs_muon
from torch import nn

import optreg
from optreg.builtin import muon_batched
from optreg.builtin.muon_batched import BatchedMuon, newton_schulz_batched

pytestmark = needs_muon

COEFFICIENTS = (3.4445, -4.775, 2.0315)


class Blocks(nn.Module):
    """Three same-shape square matrices, two same-shape tall ones, biases and a norm."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.square = nn.ModuleList(nn.Linear(width, width) for _ in range(3))
        self.tall = nn.ModuleList(nn.Linear(width, 3 * width) for _ in range(2))
        self.norm = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.square:
            x = torch.tanh(layer(x))
        for layer in self.tall:
            x = x + layer(x).unflatten(-1, (3, -1)).sum(-2)
        return self.norm(x).pow(2).sum()


def _stepped(batch: Any, steps: int = 4) -> tuple[nn.Module, Any]:
    model = Blocks()
    opt = optreg.get_optimizer("muon_adamw", model, lr=0.02, route="ndim", ns_batch=batch)
    for step in range(steps):
        opt.zero_grad()
        gen = torch.Generator().manual_seed(step)
        model(torch.randn(4, 16, generator=gen)).backward()
        opt.step()
    return model, opt


def test_batched_newton_schulz_equals_torchs_per_matrix_iteration() -> None:
    """Same-shape matrices in one batched call: each as torch's own iteration computes it
    (within bf16 rounding; exactly equal where the BLAS computes a batched and a single
    bf16 matmul alike, as on the development machines)."""
    from torch.optim._muon import _zeropower_via_newtonschulz

    gen = torch.Generator().manual_seed(0)
    for shape in [(16, 16), (48, 16), (16, 64)]:  # square, tall (transposed), wide
        stack = torch.randn(5, *shape, generator=gen)
        batched = newton_schulz_batched(stack, COEFFICIENTS, 5, 1e-7)
        looped = torch.stack([_zeropower_via_newtonschulz(m, COEFFICIENTS, 5, 1e-7) for m in stack])
        assert batched.shape == looped.shape and batched.dtype == torch.bfloat16
        torch.testing.assert_close(batched.float(), looped.float(), rtol=0, atol=2e-2)


def _batched_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """The shapes of the stacks Newton-Schulz runs batched on, from now on."""
    calls: list[tuple[int, ...]] = []
    exact = muon_batched.newton_schulz_batched

    def counted(stack: torch.Tensor, *rest: Any) -> torch.Tensor:
        calls.append(tuple(stack.shape))
        return exact(stack, *rest)

    monkeypatch.setattr(muon_batched, "newton_schulz_batched", counted)
    return calls


def _close(a: nn.Module, b: nn.Module, exact: bool) -> None:
    """Parameters equal, or (later steps) within what bf16 rounding in Newton-Schulz
    leaves: a one-ulp difference in one step's orthogonalisation (seen here for the
    transposed tall stack) moves these small matrices' next updates by up to ~3e-3."""
    for (name, x), y in zip(a.named_parameters(), b.parameters(), strict=True):
        if exact:
            assert torch.equal(x, y), name
        else:
            torch.testing.assert_close(x, y, rtol=0, atol=1e-2, msg=name)


def test_batched_steps_as_looped_and_a_copy_keeps_the_choice() -> None:
    batched, opt = _stepped(True)
    _close(batched, _stepped(False)[0], exact=False)
    assert opt.muon.batch is True and opt.hyperparameters["ns_batch"] is True
    assert copy.deepcopy(opt).muon.batch is True


def test_auto_is_a_static_rule_that_batches_small_cpu_stacks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``"auto"`` on the CPU batches every stack of matrices up to BATCHED_UP_TO values,
    from the first step, without timing anything: two runs take the same path."""
    calls = _batched_calls(monkeypatch)
    monkeypatch.setattr(muon_batched, "_measure", None)  # calling it would fail
    first, opt = _stepped("auto", steps=2)
    assert calls == [(3, 16, 16), (2, 48, 16)] * 2
    second, _ = _stepped("auto", steps=2)
    _close(first, second, exact=True)
    assert opt.muon.measured == {}
    assert "batch='auto'" in repr(opt.muon)
    calls.clear()
    monkeypatch.setattr(muon_batched, "BATCHED_UP_TO", 16 * 16)  # the tall pair is above
    _stepped("auto", steps=1)
    assert calls == [(3, 16, 16)]


def test_measure_is_an_opt_in_kept_on_the_optimizer() -> None:
    """``"measure"`` times each stack once, on its first step, which takes the loop's
    (torch's) numbers; the choice lives on the optimizer and its repr, not the state."""
    _close(_stepped("measure", steps=1)[0], _stepped(False, steps=1)[0], exact=True)
    measured, opt = _stepped("measure")
    _close(measured, _stepped(False)[0], exact=False)
    threads = torch.get_num_threads()
    assert set(opt.muon.measured) == {
        ((3, 16, 16), "float32", threads, COEFFICIENTS, 5, 1e-7),
        ((2, 48, 16), "float32", threads, COEFFICIENTS, 5, 1e-7),
    }
    assert "measured: 3x16x16: " in repr(opt.muon)
    assert "measured" not in str(opt.state_dict())
    assert _stepped("measure", steps=1)[1].muon.measured != {}  # a new optimizer measures anew
    assert _stepped("auto", steps=1)[1].muon.measured == {}
    assert opt.muon.work["matrices"] == 5


def _measure_a_stack(monkeypatch: pytest.MonkeyPatch, pays: float, noise: float = 0.0) -> bool:
    monkeypatch.setattr(muon_batched, "BATCH_PAYS", pays)
    if noise:
        exact = muon_batched.newton_schulz_batched
        monkeypatch.setattr(muon_batched, "newton_schulz_batched", lambda *a: exact(*a) + noise)
    stack = torch.randn(3, 16, 16, generator=torch.Generator().manual_seed(0))
    looped, choice = muon_batched._measure(stack, COEFFICIENTS, 5, 1e-7)
    from torch.optim._muon import _zeropower_via_newtonschulz

    for got, matrix in zip(looped, stack, strict=True):  # the step takes torch's numbers
        assert torch.equal(got, _zeropower_via_newtonschulz(matrix, COEFFICIENTS, 5, 1e-7))
    return choice


def test_a_measurement_batches_only_where_equal_and_faster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _measure_a_stack(monkeypatch, pays=1e9) is True  # equal here, and "faster"
    assert _measure_a_stack(monkeypatch, pays=0.0) is False  # never faster enough
    assert _measure_a_stack(monkeypatch, pays=1e9, noise=1e-3) is False  # not equal


def test_a_recorded_choice_is_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _batched_calls(monkeypatch)
    model = Blocks()
    opt = optreg.get_optimizer("muon_adamw", model, lr=0.02, route="ndim", ns_batch="measure")
    threads = torch.get_num_threads()
    for shape, choice in [((3, 16, 16), True), ((2, 48, 16), False)]:
        opt.muon.measured[(shape, "float32", threads, COEFFICIENTS, 5, 1e-7)] = choice
    for _ in range(2):
        model(torch.ones(2, 16)).backward()
        opt.step()
    assert calls == [(3, 16, 16), (3, 16, 16)]  # the tall pair loops, as measured


def test_which_stacks_auto_may_batch_and_a_bad_choice_is_refused() -> None:
    opt = optreg.get_optimizer("muon_adamw", Blocks(), lr=0.02, route="ndim")
    assert opt.muon.batch == "auto"
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert opt.muon._batches(cuda) is True
    assert opt.muon._batches(cpu, (128, 512)) is True  # small: batched
    assert opt.muon._batches(cpu, (256, 512)) is False  # large: torch's loop
    assert opt.muon._batches(cpu) is False
    looped = optreg.get_optimizer("muon_adamw", Blocks(), lr=0.02, route="ndim", ns_batch=False)
    assert looped.muon._batches(cuda) is False
    with pytest.raises(
        ValueError, match=r"`batch` must be True, False, 'auto' or 'measure', got 'yes'"
    ):
        BatchedMuon([nn.Parameter(torch.zeros(2, 2))], batch="yes")  # type: ignore[arg-type]


def test_a_compiled_step_loops_without_measuring() -> None:
    model = Blocks()
    opt = optreg.get_optimizer("muon_adamw", model, lr=0.02, route="ndim", ns_batch="measure")
    model(torch.ones(2, 16)).backward()
    torch._dynamo.reset()
    torch.compile(opt.step, backend="eager")()
    assert opt.muon.measured == {}
