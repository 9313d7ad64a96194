"""Every builtin schedule under a compiled optimizer step: with the lr a 0-dim tensor, the
schedule fills it in place, so the step compiles once and never again (TorchDynamo's
counting backend counts the frames it compiles), and the learning rates are the ones the
same schedule gives a float lr."""

from __future__ import annotations

import pytest
import torch
from torch._dynamo.testing import CompileCounter

import optreg
from optreg.testing import needs, step_needs_metric, step_scheduler

pytestmark = pytest.mark.usefixtures("fresh_registry")

STEPS = 20
#: the lr a schedule computes in float64 is stored in the float32 tensor
REL = 1e-6


def _names() -> list[str]:
    return sorted(e.name for e in optreg.schedulers.entries() if e.name != "adafactor")


def _metric(t: int) -> float:
    return max(1.0 - 0.1 * t, 0.5)  # falls, then plateaus: plateau logic runs


def _run(name: str, lr: float | torch.Tensor, compiled: bool) -> tuple[list[float], int]:
    kwargs = dict(needs(optreg.schedulers.resolve(name)).get("kwargs") or {})
    weight = torch.nn.Parameter(torch.linspace(-1, 1, 12).reshape(4, 3))
    opt = torch.optim.SGD([weight], lr=lr)
    sched = optreg.get_scheduler(name, opt, num_warmup_steps=3, num_training_steps=STEPS, **kwargs)
    metric = step_needs_metric(sched)
    counter = CompileCounter()
    step = torch.compile(opt.step, backend=counter) if compiled else opt.step
    held = opt.param_groups[0]["lr"]
    lrs, first = [], 0
    for t in range(STEPS):
        weight.grad = torch.full_like(weight, 0.01 * (t + 1))
        step()
        step_scheduler(sched, _metric(t), metric_driven=metric)
        lrs.append(float(opt.param_groups[0]["lr"]))
        if t == 0:
            first = counter.frame_count
    if isinstance(lr, torch.Tensor):
        assert opt.param_groups[0]["lr"] is held, f"{name} replaced the tensor lr"
    return lrs, counter.frame_count - first


def test_every_builtin_schedule_but_adafactors_is_covered() -> None:
    assert len(_names()) == len(optreg.schedulers.entries()) - 1


@pytest.mark.parametrize("name", _names())
def test_a_compiled_step_never_recompiles_under_a_builtin_schedule(name: str) -> None:
    torch._dynamo.reset()
    try:
        lrs, recompiles = _run(name, torch.tensor(0.1), compiled=True)
    finally:
        torch._dynamo.reset()
    assert recompiles == 0
    floats, _ = _run(name, 0.1, compiled=False)
    assert lrs == pytest.approx(floats, rel=REL, abs=1e-12)
    assert len(set(floats)) > 1 or name == "constant"


def test_a_float_lr_recompiles_as_the_schedule_changes_it() -> None:
    """What the tensor lr avoids (pytorch #121857): each new float is a new constant."""
    torch._dynamo.reset()
    try:
        _, recompiles = _run("cosine", 0.1, compiled=True)
    finally:
        torch._dynamo.reset()
    assert recompiles > 0
