"""optreg-example: the names resolve, the maths is right, and the conformance kit passes."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from optreg_example.schedules import step_decay_with_warmup
from optreg_example.signum import Signum

import optreg
from optreg.testing import (
    OPTIMIZER_CHECKS,
    SCHEDULER_CHECKS,
    assert_table_current,
    check_optimizer,
    check_scheduler,
)


@pytest.fixture(autouse=True)
def fresh(isolated_registry: None) -> None:
    """Every test with a registry of its own (optreg.testing's public fixture)."""


def test_names_come_from_this_distribution() -> None:
    assert optreg.optimizers["signum"].provider == "optreg_example"
    assert optreg.schedulers["step_decay_with_warmup"].provider == "optreg_example"
    cls = optreg.get_optimizer_cls("optreg-example:signum")
    assert issubclass(cls, torch.optim.Optimizer)
    assert type(cls([torch.nn.Parameter(torch.zeros(2))], lr=0.01)) is Signum


def test_signum_update_matches_the_formula() -> None:
    p = torch.nn.Parameter(torch.tensor([1.0, -1.0, 0.5]))
    opt = optreg.get_optimizer("signum", [p], lr=0.1, beta=0.5, weight_decay=0.1)
    grads = [torch.tensor([0.2, -0.4, 0.0]), torch.tensor([-1.0, 0.1, 0.3])]
    m = torch.zeros(3)
    want = p.detach().clone()
    for g in grads:
        p.grad = g.clone()
        opt.step()
        m = 0.5 * m + 0.5 * g
        want = want * (1 - 0.1 * 0.1) - 0.1 * torch.sign(m)
    torch.testing.assert_close(p.detach(), want, rtol=0, atol=1e-7)
    assert float(opt.state[p]["step"]) == 2.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": -1.0}, "Invalid learning rate: -1.0"),
        ({"beta": 1.0}, "Invalid beta: 1.0"),
        ({"weight_decay": -0.1}, "Invalid weight_decay: -0.1"),
    ],
)
def test_signum_rejects_bad_hyperparameters(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Signum([torch.nn.Parameter(torch.ones(1))], **kwargs)


def test_schedule_values() -> None:
    values = [
        step_decay_with_warmup(s, num_warmup_steps=2, step_size=3, gamma=0.5) for s in range(9)
    ]
    assert values == [0.0, 0.5, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]


def test_schedule_through_get_scheduler_and_pickle() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=1.0)
    sched = optreg.get_scheduler("step_decay_with_warmup", opt, num_warmup_steps=2, step_size=3)
    lrs = []
    for _ in range(6):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == [0.5, 1.0, 1.0, 1.0, 0.5, 0.5]
    assert pickle.loads(pickle.dumps(sched)).get_last_lr() == [0.5]
    with pytest.raises(ValueError, match="step_decay_with_warmup requires `num_warmup_steps`"):
        optreg.get_scheduler("step_decay_with_warmup", opt)
    with pytest.raises(ValueError, match=r"`gamma` must be in \(0, 1\], got 2.0"):
        optreg.get_scheduler("step_decay_with_warmup", opt, num_warmup_steps=1, gamma=2.0)


# The two lines a plugin author copies: the conformance kit on each name.
def test_signum_conforms() -> None:
    assert check_optimizer("signum", lr=0.01).passed == list(OPTIMIZER_CHECKS)


def test_schedule_conforms() -> None:
    assert check_scheduler("step_decay_with_warmup").passed == list(SCHEDULER_CHECKS)


def test_readme_kit_table_is_current() -> None:
    rows = assert_table_current(Path(__file__).parents[1] / "README.md", "optreg-example")
    assert {r.status for r in rows} == {"passes"}


def test_optreg_info_shows_the_capabilities_this_readme_publishes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Installed, this distribution carries its README as its metadata's description:
    ``optreg info signum`` shows the capability row written there, and says whose it is."""
    import json

    from optreg.builtin.capabilities import parse
    from optreg.cli import main

    readme = parse((Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8"))
    assert main(["info", "signum", "--json"]) == 0
    caps = json.loads(capsys.readouterr().out)["optimizer"]["capabilities"]
    assert caps["source"] == "optreg-example's README"
    assert caps["torch"] == readme["torch"]
    assert caps["verdicts"] == {
        c: {"status": s, "detail": d} for c, (s, d) in readme["optimizers"]["signum"].items()
    }
    assert caps["verdicts"]["bf16"]["status"] == "pass"
