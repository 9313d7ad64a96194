"""optreg.cli._plot: the plot and compare commands (figures, --kw routing, failing rows)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import torch
from helpers import STEPS, one_error_line, plateau, png_size, run, sgd, table_rows

import optreg
from optreg.cli import _curves, _task, main  # figures and task, replaced

if TYPE_CHECKING:
    pass


# --- helpers -----------------------------------------------------------------


EXPECTED_PNG = (round(_curves.FIGSIZE[0] * _curves.DPI), round(_curves.FIGSIZE[1] * _curves.DPI))


def test_plot_python_m_writes_png(tmp_path: Path) -> None:
    out = tmp_path / "lr.png"
    proc = run(
        [
            "plot",
            "linear",
            "cosine",
            "constant",
            "--num-warmup-steps",
            "5",
            "--num-training-steps",
            "50",
            "--lr",
            "0.1",
            "-o",
            str(out),
        ],
        module=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.strip() == f"saved {out} (3 schedules)"
    assert png_size(out) == EXPECTED_PNG


def test_compare_console_script_progress_table_png(tmp_path: Path) -> None:
    out = tmp_path / "loss.png"
    proc = run(
        ["compare", "sgd", "adamw", "--steps", "12", "--lr", "0.05", "--progress", "-o", str(out)]
    )
    assert proc.returncode == 0, proc.stderr
    assert png_size(out) == EXPECTED_PNG
    rows = table_rows(proc.stdout)
    assert list(rows) == ["sgd", "adamw"]
    assert rows["sgd"][-1] == "0"  # plain SGD keeps no state
    # one tqdm bar per run on stderr, each reaching 12/12
    assert proc.stderr.count("12/12") >= 2
    assert "sgd:" in proc.stderr
    assert "adamw:" in proc.stderr


def test_plot_without_matplotlib_names_the_extra(
    out_png: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fresh_registry: None,
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    for argv in (
        ["plot", "constant", *STEPS, "-o", out_png],
        ["compare", "sgd", "--steps", "2", "-o", out_png],
    ):
        assert main(argv) == 2
        line = one_error_line(capsys.readouterr().err)
        assert line.endswith(
            'plotting needs matplotlib, which is not installed; install it with: pip install "optreg[plot]"'
        )
    assert not Path(out_png).exists()


def test_plot_kw_applies_where_accepted(
    out_png: str, capsys: pytest.CaptureFixture[str], fresh_registry: None
) -> None:
    optreg.register_scheduler("cli_plateau", plateau)
    assert (
        main(
            [
                "plot",
                "constant",
                "cli_plateau",
                "--num-training-steps",
                "30",
                "--kw",
                "factor=0.5",
                "--kw",
                "patience=2",
                "--log-y",
                "-o",
                out_png,
            ]
        )
        == 0
    )
    assert capsys.readouterr().out == f"saved {out_png} (2 schedules)\n"
    assert png_size(Path(out_png)) == EXPECTED_PNG


def test_plot_scoped_kw_reaches_one_schedule(
    out_png: str, monkeypatch: pytest.MonkeyPatch, fresh_registry: None
) -> None:
    drawn: list[_curves.LrCurve] = []
    monkeypatch.setattr(_curves, "save_lr_figure", lambda curves, *a, **k: drawn.extend(curves))
    argv = ["plot", "linear", "cosine", "--num-warmup-steps", "0", "--num-training-steps", "12"]
    argv += ["--kw", "COSINE.num_cycles=1.5", "--kw", "last_epoch=-1", "-o", out_png]
    assert main(argv) == 0
    linear, cosine = drawn
    assert linear.kwargs == (("last_epoch", -1),)
    assert cosine.kwargs == (("last_epoch", -1), ("num_cycles", 1.5))
    assert cosine.label == "cosine (last_epoch=-1, num_cycles=1.5)"
    expected = [0.5 * (1 + math.cos(math.pi * 1.5 * 2 * s / 12)) for s in range(12)]
    assert cosine.lrs == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_plot_kw_goes_to_named_parameters_before_var_kwargs(
    out_png: str, monkeypatch: pytest.MonkeyPatch, fresh_registry: None
) -> None:
    drawn: list[_curves.LrCurve] = []
    monkeypatch.setattr(_curves, "save_lr_figure", lambda curves, *a, **k: drawn.extend(curves))
    optreg.register_scheduler("cli_plateau", plateau)  # takes **kwargs only
    argv = ["plot", "cosine", "cli_plateau", "--num-warmup-steps", "0", "--num-training-steps"]
    argv += ["5", "--kw", "num_cycles=1", "--kw", "factor=0.5", "-o", out_png]
    assert main(argv) == 0
    cosine, on_plateau = drawn
    assert cosine.kwargs == (("num_cycles", 1),)
    assert on_plateau.kwargs == (("factor", 0.5),)
    assert on_plateau.label == "cli_plateau (fed a synthetic plateauing loss, factor=0.5)"


def test_compare_same_seed_same_numbers(
    out_png: str, capsys: pytest.CaptureFixture[str], fresh_registry: None
) -> None:
    argv = [
        "compare",
        "sgd",
        "adamw",
        "--steps",
        "25",
        "--lr",
        "0.05",
        "--seed",
        "4",
        "-o",
        out_png,
    ]
    tables = []
    threads = torch.get_num_threads()
    for _ in range(2):
        assert main(argv) == 0
        tables.append(table_rows(capsys.readouterr().out))
    first, second = tables
    assert list(first) == ["sgd", "adamw"]
    for name in first:
        assert first[name][:2] == second[name][:2]  # final loss, accuracy
        assert first[name][3] == second[name][3]  # state bytes
    argv[argv.index("--seed") + 1] = "5"
    assert main(argv) == 0  # another seed, other numbers
    other = table_rows(capsys.readouterr().out)
    assert other["adamw"][:2] != first["adamw"][:2]
    assert png_size(Path(out_png)) == EXPECTED_PNG
    assert torch.get_num_threads() == threads  # compare runs on one thread, then restores


def _step_closure_optimizer(params: Any, lr: float = 1.0) -> torch.optim.LBFGS:
    return torch.optim.LBFGS(params, lr=lr, max_iter=3, history_size=4)


def test_compare_lbfgs_with_metric_driven_scheduler(
    out_png: str, capsys: pytest.CaptureFixture[str], fresh_registry: None
) -> None:
    optreg.register_optimizer("cli_lbfgs", _step_closure_optimizer)
    optreg.register_scheduler("cli_plateau", plateau)
    assert _task.needs_closure(_step_closure_optimizer([torch.zeros(1, requires_grad=True)]))
    code = main(
        [
            "compare",
            "cli_lbfgs",
            "sgd",
            "--scheduler",
            "cli_plateau",
            "--kw",
            "patience=0",
            "--steps",
            "6",
            "--lr",
            "0.1",
            "-o",
            out_png,
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    rows = table_rows(out)
    assert set(rows) == {"cli_lbfgs", "sgd"}
    assert int(rows["cli_lbfgs"][3].replace(",", "")) > 0  # LBFGS keeps its history
    assert all(math.isfinite(float(r[0])) for r in rows.values())
    assert "6 steps, lr 0.1, scheduler cli_plateau, torch " in out


class _Exploding(torch.optim.SGD):
    def step(self, closure: Any = None) -> Any:
        raise RuntimeError("kaboom")


def test_compare_failed_run_is_reported_exit_1(
    out_png: str, capsys: pytest.CaptureFixture[str], fresh_registry: None
) -> None:
    optreg.register_optimizer("cli_exploding", _Exploding)
    assert (
        main(["compare", "sgd", "cli_exploding", "--steps", "3", "--lr", "0.1", "-o", out_png]) == 1
    )
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert rows["cli_exploding"] == ["failed", "-", "-", "-"]
    assert "cli_exploding: RuntimeError: kaboom" in out.splitlines()
    assert png_size(Path(out_png)) == EXPECTED_PNG  # the runs that worked are plotted
    assert main(["compare", "cli_exploding", "--steps", "2", "-o", out_png]) == 1
    assert table_rows(capsys.readouterr().out) == {"cli_exploding": ["failed", "-", "-", "-"]}
    assert png_size(Path(out_png)) == EXPECTED_PNG  # an empty figure, no legend warning


def test_compare_refuses_an_unknown_name_before_training_any_row(
    out_png: str, capsys: pytest.CaptureFixture[str], fresh_registry: None
) -> None:
    argv = ["compare", "adamw", "adamwx", "sgd", "--steps", "5", "--no-progress"]
    assert main([*argv, "-o", out_png]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing trained, no table
    assert one_error_line(captured.err) == (
        "optreg compare: error: unknown optimizer 'adamwx'; did you mean 'adamw' or 'adamax' "
        "or 'adam'? (see `optreg list optimizers`)"
    )
    assert not Path(out_png).exists()


def test_compare_exit_0_when_no_row_fails(out_png: str, fresh_registry: None) -> None:
    assert main(["compare", "sgd", "--steps", "3", "--no-progress", "-o", out_png]) == 0


def test_compare_kw_reaches_one_optimizer(
    out_png: str, capsys: pytest.CaptureFixture[str], fresh_registry: None
) -> None:
    argv = ["compare", "sgd", "adamw", "--steps", "3", "--no-progress", "--lr", "0.01"]
    assert main([*argv, "--kw", "sgd.momentum=0.9", "-o", out_png]) == 0
    rows = table_rows(capsys.readouterr().out)
    assert rows["sgd"][-1] != "0"  # momentum buffers: sgd has state now
    assert main([*argv, "-o", out_png]) == 0
    assert table_rows(capsys.readouterr().out)["sgd"][-1] == "0"


CONFIG_JSON = json.dumps(
    {
        "optimizer": {"name": "adamw", "lr": 0.003, "betas": [0.9, 0.95]},
        "scheduler": {
            "name": "sequence",
            "phases": [
                {"name": "linear", "steps": 0.3, "num_warmup_steps": 0.5},
                {"name": "constant", "steps": 0.7},
            ],
        },
        "num_training_steps": 20,
    }
)


def test_plot_takes_a_config(
    out_png: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh_registry: None
) -> None:
    drawn: list[_curves.LrCurve] = []
    monkeypatch.setattr(_curves, "save_lr_figure", lambda curves, *a, **k: drawn.extend(curves))
    config = tmp_path / "run.json"
    config.write_text(CONFIG_JSON)
    assert main(["plot", "--config", str(config), "-o", out_png]) == 0
    [curve] = drawn
    assert curve.name == "sequence" and len(curve.lrs) == 20 and curve.boundaries == (6,)
    ref = optreg.get_scheduler(
        "sequence",
        sgd(1.0),
        num_training_steps=20,
        phases=json.loads(CONFIG_JSON)["scheduler"]["phases"],
    )
    assert list(curve.lrs) == [ref.lr_lambdas[0](s) for s in range(20)]


def test_compare_takes_a_config(
    out_png: str, capsys: pytest.CaptureFixture[str], fresh_registry: None
) -> None:
    assert main(["compare", "sgd", "--config", CONFIG_JSON, "--no-progress", "-o", out_png]) == 0
    out = capsys.readouterr().out
    assert "20 steps, each optimizer's default lr, scheduler sequence" in out
    assert set(table_rows(out)) == {"sgd", "adamw"}


def test_a_bad_config_is_a_usage_error(
    out_png: str, capsys: pytest.CaptureFixture[str], fresh_registry: None
) -> None:
    assert main(["plot", "--config", '{"scheduler": ', "-o", out_png]) == 2
    assert (
        "--config: the inline config: Expecting value at line 1 column 15"
        in capsys.readouterr().err
    )
    assert main(["plot", "--config", '{"optimizer": "sgd"}', "-o", out_png]) == 2
    assert "no 'scheduler' section to plot" in capsys.readouterr().err
