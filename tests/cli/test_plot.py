"""optreg.cli._curves: learning-rate curves (exact values, metric-driven schedules) and figures."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from helpers import plateau

import optreg
from optreg.cli import _curves  # the figures, drawn without the command

if TYPE_CHECKING:
    pass


# --- helpers -----------------------------------------------------------------


def test_lr_curve_linear_matches_formula(fresh_registry: None) -> None:
    w, t, lr = 4, 20, 0.5
    curve = _curves.lr_curve("linear", lr=lr, num_warmup_steps=w, num_training_steps=t)
    expected = [lr * (s / w if s < w else max(0.0, (t - s) / (t - w))) for s in range(t)]
    assert curve.lrs == pytest.approx(expected, rel=1e-12, abs=0)
    assert curve.label == "linear"
    assert not curve.metric_driven


def test_lr_curve_metric_driven_gets_synthetic_plateau(fresh_registry: None) -> None:
    optreg.register_scheduler("cli_plateau", plateau)
    curve = _curves.lr_curve("cli_plateau", lr=1.0, num_warmup_steps=None, num_training_steps=100)
    assert curve.metric_driven
    assert curve.label == "cli_plateau (fed a synthetic plateauing loss)"
    # the loss falls until step 50, then stays at 0.1: ReduceLROnPlateau (patience 10,
    # factor 0.1) cuts the lr after 11 bad steps, i.e. after steps 61, 72, 83 and 94
    expected = [1.0] * 62 + [0.1] * 11 + [0.01] * 11 + [1e-3] * 11 + [1e-4] * 5
    assert curve.lrs == pytest.approx(expected, rel=1e-9)
    assert [_curves.synthetic_loss(s, 100) for s in (0, 25, 50, 99)] == pytest.approx(
        [1.0, 0.325, 0.1, 0.1]
    )


def test_a_long_schedule_is_sampled_exactly(fresh_registry: None) -> None:
    """99,999,999 steps: about MAX_POINTS exact values (warmup end kept), in a blink."""
    n, w = 99_999_999, 1000
    curve = _curves.lr_curve("cosine", lr=2.0, num_warmup_steps=w, num_training_steps=n)
    assert len(curve.lrs) <= _curves.MAX_POINTS + 3
    assert curve.steps[0] == 0 and curve.steps[-1] == n - 1 and w in curve.steps
    for s, lr in zip(curve.steps, curve.lrs, strict=True):
        want = s / w if s < w else 0.5 * (1 + math.cos(math.pi * (s - w) / (n - w)))
        assert lr == pytest.approx(2.0 * want, rel=1e-12, abs=1e-15)


def test_a_long_metric_driven_schedule_is_refused(fresh_registry: None) -> None:
    with pytest.raises(ValueError, match="is stepped one step at a time"):
        _curves.lr_curve("greedy", lr=1.0, num_warmup_steps=None, num_training_steps=10**7)


def test_figures_are_byte_identical_from_run_to_run(tmp_path: Path) -> None:
    losses = {"a": [1.0, 0.8, 0.5], "b": [1.0, 0.8, 0.5]}  # two identical curves
    first, second = tmp_path / "1.png", tmp_path / "2.png"
    _curves.save_loss_figure(losses, first, title="t")
    _curves.save_loss_figure(losses, second, title="t")
    assert first.read_bytes() == second.read_bytes()
    assert b"matplotlib" not in first.read_bytes().lower()  # no version stamp


def test_a_sequence_curve_marks_its_phase_boundaries(fresh_registry: None) -> None:
    phases = [
        {"name": "linear", "steps": 10, "num_warmup_steps": 5},
        {"name": "constant", "steps": 30},
    ]
    curve = _curves.lr_curve(
        "sequence", lr=1.0, num_warmup_steps=None, num_training_steps=40, kwargs={"phases": phases}
    )
    assert curve.boundaries == (10,)
    assert curve.label == "sequence (phases='linear > constant')"
    long = _curves.lr_curve(
        "sequence",
        lr=1.0,
        num_warmup_steps=None,
        num_training_steps=10**7,
        kwargs={"phases": [{"name": "linear", "steps": 0.3}, {"name": "constant", "steps": 0.7}]},
    )
    assert long.boundaries == (3_000_000,) and 3_000_000 in long.steps


def test_coinciding_curves_stay_visible_and_the_log_axis_is_labelled(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """adamw and adamw_hf draw the same curve: each gets its own line style and markers at
    other steps; a loss between 0.3 and 1.7 gets labelled ticks above 1 as well."""
    figures: list[Any] = []
    monkeypatch.setattr(_curves, "_save", lambda fig, path: figures.append(fig))
    same = [1.7 * 0.99**s for s in range(300)]
    _curves.save_loss_figure(
        {"adamw": same, "adamw_hf": same, "adamw_8bit": same}, tmp_path / "x.png", title="t"
    )
    [fig] = figures
    ax = fig.axes[0]
    fig.canvas.draw()
    drawn = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert len({line.get_linestyle() for line in drawn}) == 3
    assert len({line.get_marker() for line in drawn}) == 3
    assert len({line.get_markevery()[0] for line in drawn}) == 3  # markers at other steps
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert any(float(x) > 1 for x in labels) and any(float(x) < 1 for x in labels), labels


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("cosine", {"num_warmup_steps": 7, "num_cycles": 0.7}),
        ("polynomial", {"num_warmup_steps": 7, "lr_end": 1e-3, "power": 2.0}),
        ("cosine_with_min_lr", {"num_warmup_steps": 0.1, "min_lr": 0.05}),
        ("warmup_stable_decay", {"num_warmup_steps": 7, "num_decay_steps": 30}),
    ],
)
def test_a_builtin_curve_builds_no_optimizer_and_equals_the_stepped_schedule(
    name: str, kwargs: dict[str, Any], monkeypatch: pytest.MonkeyPatch, fresh_registry: None
) -> None:
    import torch

    import optreg

    n, lr = 100, 0.5
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = optreg.get_scheduler(name, opt, num_training_steps=n, **kwargs)
    stepped = []
    for _ in range(n):
        stepped.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    built: list[str] = []
    original = torch.optim.Optimizer.__init__

    def counting(self: Any, *args: Any, **kw: Any) -> None:
        built.append(type(self).__name__)
        original(self, *args, **kw)

    monkeypatch.setattr(torch.optim.Optimizer, "__init__", counting)
    warmup = kwargs.pop("num_warmup_steps")
    curve = _curves.lr_curve(
        name, lr=lr, num_warmup_steps=warmup, num_training_steps=n, kwargs=kwargs
    )
    assert built == []
    assert list(curve.lrs) == stepped  # exact: lr * f(step), what the LambdaLR writes


def test_plot_draws_a_weight_decay_schedule_from_a_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh_registry: None
) -> None:
    """The curve a config's weight-decay schedule drives: its values and its axis."""
    pytest.importorskip("matplotlib")
    from optreg.cli import main

    figures: list[Any] = []
    monkeypatch.setattr(_curves, "_save", lambda fig, path: figures.append(fig))
    config = (
        '{"optimizer": "adamw", "num_training_steps": 20, "scheduler": {"name": "cosine", '
        '"num_warmup_steps": 4, "hyperparameter": "weight_decay"}}'
    )
    assert main(["plot", "--config", config, "--lr", "0.1", "-o", str(tmp_path / "w.png")]) == 0
    [fig] = figures
    ax = fig.axes[0]
    assert ax.get_ylabel() == "weight_decay" and ax.get_title().startswith("weight_decay 0.1")
    (line,) = [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]
    import torch

    opt = optreg.get_optimizer(
        "sgd", [torch.nn.Parameter(torch.zeros(1))], lr=1.0, weight_decay=0.1
    )
    sched = optreg.get_scheduler(
        "cosine", opt, num_warmup_steps=4, num_training_steps=20, hyperparameter="weight_decay"
    )
    expected = []
    for _ in range(20):
        expected.append(opt.param_groups[0]["weight_decay"])
        opt.step()
        sched.step()
    assert list(line.get_ydata()) == pytest.approx(expected, rel=1e-12, abs=0)
