"""optreg.builtin.sequence: phases of registered schedules, each exact at its local step."""

from __future__ import annotations

import io
from functools import partial
from typing import Any

import pytest
import torch
from helpers import pickle_round_trip, sgd
from torch.optim.lr_scheduler import LambdaLR

import optreg
from optreg.builtin.sequence import get_sequence_schedule

pytestmark = pytest.mark.usefixtures("fresh_registry")

PHASES: list[dict[str, Any]] = [
    {"name": "constant_with_warmup", "steps": 10, "num_warmup_steps": 10},
    {"name": "cosine", "steps": 60, "num_cycles": 0.5},
    {"name": "polynomial", "steps": 20, "power": 2.0, "num_warmup_steps": 5},
    {"name": "warmup_stable_decay", "steps": 10, "num_decay_steps": 4},
]
N = 100


def _opt() -> torch.optim.Optimizer:
    return sgd(0.5, 0.1, default=0.3)  # two groups, and a default lr polynomial reads


def _lrs(sched: Any, opt: torch.optim.Optimizer, steps: int) -> list[list[float]]:
    out = []
    for _ in range(steps):
        out.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    return out


def test_every_phase_is_exactly_the_standalone_schedule_at_every_step() -> None:
    opt = _opt()
    seq = optreg.get_scheduler("sequence", opt, num_training_steps=N, phases=PHASES)
    got = _lrs(seq, opt, N)
    start = 0
    for phase in PHASES:
        length = phase["steps"]
        kwargs = {k: v for k, v in phase.items() if k not in ("name", "steps")}
        kwargs.setdefault("num_warmup_steps", 0)
        ref_opt = _opt()
        ref = optreg.get_scheduler(phase["name"], ref_opt, num_training_steps=length, **kwargs)
        want = _lrs(ref, ref_opt, length)
        assert got[start : start + length] == want, phase["name"]  # ==, not approx
        start += length


def test_after_the_end_the_last_phase_holds_its_end_value() -> None:
    opt = _opt()
    phases = [{"name": "linear", "steps": 5}, {"name": "cosine", "steps": 5, "num_cycles": 1.0}]
    seq = optreg.get_scheduler("sequence", opt, num_training_steps=10, phases=phases)
    fn = seq.lr_lambdas[0]
    end = fn(10)
    assert end == 1.0  # a full cosine cycle ends back at 1: it must not keep rising or fall
    assert [fn(s) for s in (10, 11, 50, 10**6)] == [end] * 4
    cosine_end = optreg.get_scheduler("cosine", sgd(1.0), 0, 5, num_cycles=1.0).lr_lambdas[0](5)
    assert end == cosine_end


def test_fractions_fill_the_training_exactly() -> None:
    for n in (6, 7, 10, 33, 1000):
        seq = optreg.get_scheduler(
            "sequence",
            sgd(1.0),
            num_training_steps=n,
            phases=[
                {"name": "linear", "steps": 0.25, "num_warmup_steps": 0.5},
                {"name": "constant", "steps": 0.25},
                {"name": "cosine", "steps": 0.5},
            ],
        )
        keywords = seq.lr_lambdas[0].keywords
        assert sum(keywords["lengths"]) == n
        assert keywords["starts"][0] == 0


@pytest.mark.parametrize(
    ("phases", "error", "message"),
    [
        ([{"name": "linear", "steps": 30}, {"name": "cosine", "steps": 60}], ValueError,
         "the phase lengths must add up to num_training_steps: 30 + 60 = 90 != 100"),
        ([], ValueError, "`phases` must hold at least one phase, got []"),
        ({"name": "linear"}, TypeError, "`phases` must be a list of phase mappings"),
        ([{"name": "linear"}], TypeError, "`phases[0]` must be a mapping with 'name' and 'steps'"),
        ([{"name": "reduce_lr_on_plateau", "steps": 100}], ValueError,
         "phases[0] ('reduce_lr_on_plateau') is metric-driven"),
        ([{"name": "greedy", "steps": 100}], ValueError, "phases[0] ('greedy') is metric-driven"),
        ([{"name": "sequence", "steps": 100}], ValueError, "a sequence cannot hold another sequence"),
        ([{"name": "cosinne", "steps": 100}], optreg.UnknownNameError, "did you mean 'cosine'"),
        ([{"name": "cosine", "steps": 100, "num_cycle": 2}], TypeError,
         "sequence phases[0] ('cosine') got an unexpected keyword argument 'num_cycle'; did you mean 'num_cycles'?"),
        ([{"name": "cosine", "steps": 100, "num_training_steps": 5}], ValueError,
         "a phase's num_training_steps is its `steps` (100)"),
        ([{"name": "warmup_stable_decay", "steps": 100}], ValueError,
         "sequence phases[0] ('warmup_stable_decay') requires `num_decay_steps`"),
        ([{"name": "linear", "steps": 0.001}, {"name": "linear", "steps": 100}], ValueError,
         "`phases[0].steps` must make a phase of at least 1 step, got 0.001"),
    ],
)  # fmt: skip
def test_bad_phases_are_named(phases: Any, error: type, message: str) -> None:
    with pytest.raises(error) as info:
        optreg.get_scheduler("sequence", sgd(1.0), num_training_steps=100, phases=phases)
    assert message in str(info.value)


def test_a_non_lambda_schedule_is_refused() -> None:
    optreg.register_scheduler(
        "step_lr", lambda optimizer, **kw: torch.optim.lr_scheduler.StepLR(optimizer, 3)
    )
    with pytest.raises(
        ValueError, match=r"phases\[0\] \('step_lr'\) built a StepLR, not a LambdaLR"
    ):
        optreg.get_scheduler(
            "sequence", sgd(1.0), 10, 10, phases=[{"name": "step_lr", "steps": 10}]
        )


def _halving(step: int, *, every: int) -> float:
    return 0.5 ** (step // every)


def test_a_plugin_schedule_can_be_a_phase() -> None:
    optreg.register_scheduler(
        "halving", lambda optimizer, every=2: LambdaLR(optimizer, partial(_halving, every=every))
    )
    seq = optreg.get_scheduler(
        "sequence", sgd(1.0), num_training_steps=8,
        phases=[{"name": "linear", "steps": 4, "num_warmup_steps": 2}, {"name": "halving", "steps": 4, "every": 1}],
    )  # fmt: skip
    fn = seq.lr_lambdas[0]
    assert [fn(s) for s in range(4, 9)] == [1.0, 0.5, 0.25, 0.125, 0.0625]


def test_resumes_bit_identically_and_pickles() -> None:
    opt = _opt()
    seq = optreg.get_scheduler("sequence", opt, num_training_steps=N, phases=PHASES)
    first = _lrs(seq, opt, 37)
    buf = io.BytesIO()
    torch.save({"opt": opt.state_dict(), "sched": seq.state_dict()}, buf)
    copy = pickle_round_trip(seq)
    rest = _lrs(seq, opt, N - 37 + 5)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)
    opt2 = _opt()
    seq2 = optreg.get_scheduler("sequence", opt2, num_training_steps=N, phases=PHASES)
    opt2.load_state_dict(ckpt["opt"])
    seq2.load_state_dict(ckpt["sched"])
    assert _lrs(seq2, opt2, N - 37 + 5) == rest
    assert len(first) == 37
    assert copy.lr_lambdas[0](50) == seq.lr_lambdas[0](50)


def test_the_factory_itself_and_the_conformance_kit() -> None:
    from optreg.testing import check_scheduler

    direct = get_sequence_schedule(sgd(1.0), 10, [{"name": "constant", "steps": 10}])
    assert isinstance(direct, LambdaLR)
    report = check_scheduler("sequence")
    assert report.passed == ["build", "finite_non_negative_lr", "resume_bit_identical", "picklable"]


@pytest.mark.parametrize(
    ("phase", "end"),
    [
        ({"name": "polynomial", "steps": 10, "lr_end": 1e-4}, 1e-4),
        ({"name": "cosine_with_min_lr", "steps": 10, "min_lr": 1e-4}, 1e-4),
    ],
)
def test_a_tensor_lr_gives_the_same_lrs_as_a_float(phase: dict[str, Any], end: float) -> None:
    """A phase reads lr_end / min_lr against the optimizer's lr: a tensor lr is that lr
    (it was read as 1.0, and the end came out 100x off)."""
    seen = {}
    for lr in (0.01, torch.tensor(0.01)):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr)
        sched = optreg.get_scheduler("sequence", opt, num_training_steps=10, phases=[phase])
        lrs = []
        for _ in range(10):
            opt.step()
            sched.step()
            lrs.append(float(opt.param_groups[0]["lr"]))
        seen[type(lr).__name__] = lrs
    assert seen["Tensor"] == pytest.approx(seen["float"], rel=1e-6)
    assert seen["Tensor"][-1] == pytest.approx(end, rel=1e-6)
    assert isinstance(opt.param_groups[0]["lr"], torch.Tensor)  # still the tensor, filled in place


def test_a_sequence_checkpoint_saved_before_the_pure_phases_still_loads() -> None:
    """tests/data/sequence_v0.2_step37.pt: PHASES on _opt()'s groups, saved at step 37 by
    the sequence that built its phases on a shadow optimizer, with the lrs of the 68
    steps that followed."""
    from pathlib import Path

    path = Path(__file__).parents[1] / "data" / "sequence_v0.2_step37.pt"
    saved = torch.load(path, weights_only=True)
    opt = _opt()
    seq = optreg.get_scheduler("sequence", opt, num_training_steps=N, phases=PHASES)
    seq.load_state_dict(saved["sched"])
    assert [g["lr"] for g in opt.param_groups] == saved["optimizer_lrs"]
    following = []
    for _ in range(68):
        opt.step()
        seq.step()
        following.append([g["lr"] for g in opt.param_groups])
    assert following == saved["next"]  # exact: the same pure functions, joined


def test_a_sequence_of_builtins_builds_no_optimizer(monkeypatch: pytest.MonkeyPatch) -> None:
    opt = _opt()
    built: list[str] = []
    original = torch.optim.Optimizer.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        built.append(type(self).__name__)
        original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Optimizer, "__init__", counting)
    optreg.get_scheduler("sequence", opt, num_training_steps=N, phases=PHASES)
    assert built == []


def test_a_plugin_phase_leaves_the_optimizers_learning_rates_as_they_were() -> None:
    optreg.register_scheduler(
        "halving_again",
        lambda optimizer, every=2: LambdaLR(optimizer, partial(_halving, every=every)),
    )
    lr = torch.tensor(0.4)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr)
    seq = optreg.get_scheduler(
        "sequence",
        opt,
        num_training_steps=6,
        phases=[{"name": "constant", "steps": 2}, {"name": "halving_again", "steps": 4}],
    )
    assert opt.param_groups[0]["lr"] is lr and float(lr) == pytest.approx(0.4)
    assert opt.param_groups[0]["initial_lr"] == pytest.approx(0.4)
    assert [seq.lr_lambdas[0](s) for s in range(6)] == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5]


def test_every_builtin_pure_form_equals_its_schedules_multipliers_at_10000_steps() -> None:
    from optreg._core import loading, signature  # contracts and signatures of the factories

    steps = 10_000
    arguments = {
        "constant": {},
        "constant_with_warmup": {"num_warmup_steps": 500},
        "linear": {"num_warmup_steps": 500, "num_training_steps": steps},
        "cosine": {"num_warmup_steps": 500, "num_training_steps": steps, "num_cycles": 0.7},
        "cosine_with_restarts": {"num_warmup_steps": 500, "num_training_steps": steps, "num_cycles": 3},
        "polynomial": {"num_warmup_steps": 500, "num_training_steps": steps, "lr_end": 1e-3, "power": 2.0},
        "inverse_sqrt": {"num_warmup_steps": 500},
        "cosine_with_min_lr": {"num_warmup_steps": 500, "num_training_steps": steps, "min_lr": 0.01},
        "cosine_warmup_with_min_lr": {"num_warmup_steps": 500, "num_training_steps": steps, "min_lr_rate": 0.1, "warmup_lr_rate": 0.05},
        "warmup_stable_decay": {"num_warmup_steps": 500, "num_decay_steps": 2000, "num_training_steps": steps, "decay_type": "1-sqrt"},
    }  # fmt: skip
    lambda_schedules = {
        name
        for name in optreg.list_schedulers()
        if loading.contract(optreg.schedulers.resolve(name)).multiplier is not None
    }
    assert lambda_schedules == set(arguments)  # every builtin LambdaLR declares its pure form
    for name, kwargs in arguments.items():
        pure = loading.contract(optreg.schedulers.resolve(name)).multiplier
        assert pure is not None
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.2)
        sched = optreg.get_scheduler(name, opt, **kwargs)
        given = dict(kwargs)
        if signature.takes(pure, "base_lr") == "named":  # the optimizer's lr, which it reads
            given["base_lr"] = 0.2
        fn = pure(**given)
        assert [fn(s) for s in range(steps + 1)] == [
            sched.lr_lambdas[0](s) for s in range(steps + 1)
        ], name
