"""The ``optreg`` command: real console script and ``python -m optreg`` in subprocesses,
plus in-process ``main(argv)`` runs for the error table and the exact numbers."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau

import optreg
from optreg import _compare, _plot
from optreg.cli import main, parse_kw

if TYPE_CHECKING:
    from conftest import MakeDist


# --- helpers -----------------------------------------------------------------

EXPECTED_PNG = (round(_plot.FIGSIZE[0] * _plot.DPI), round(_plot.FIGSIZE[1] * _plot.DPI))


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk; fails the test on anything else."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG: {data[:8]!r}"
    length, chunk = struct.unpack(">I4s", data[8:16])
    assert chunk == b"IHDR"
    assert length == 13
    width, height = struct.unpack(">II", data[16:24])
    assert data[-8:-4] == b"IEND", f"{path} is truncated"
    return width, height


def console_script() -> str:
    """The ``optreg`` script installed next to this interpreter."""
    here = Path(sys.executable).parent
    found = shutil.which("optreg", path=str(here)) or shutil.which("optreg")
    assert found, f"the optreg console script is not installed next to {sys.executable}"
    return found


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTREG_")}
    env.update(extra)
    return env


def run(
    args: list[str], *, module: bool = False, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-W", "error", "-m", "optreg"] if module else [console_script()]
    return subprocess.run(
        cmd + args, capture_output=True, text=True, env=env or clean_env(), timeout=300
    )


def one_error_line(stderr: str) -> str:
    """The single line of an error report (and no traceback)."""
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {stderr!r}"
    return lines[0]


def table_rows(out: str) -> dict[str, list[str]]:
    """Rows of the ``compare`` table keyed by optimizer."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("optimizer  "))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.strip():
            break
        cells = line.split()
        rows[cells[0]] = cells[1:]
    return rows


MARKER_MODULE = """
import os, pathlib
pathlib.Path(os.environ["OPTREG_TEST_MARKER"]).write_text("imported")
class Lion:
    '''Lion, imported only when used.'''
    def __init__(self, params, lr=1e-4):
        pass
"""


@pytest.fixture
def marker_dist(make_dist: MakeDist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A third-party dist whose target module leaves a marker file when imported.

    It provides ``lion`` and a second ``adamw`` (shadowed by the builtin).
    """
    marker = tmp_path / "imported.txt"
    monkeypatch.setenv("OPTREG_TEST_MARKER", str(marker))
    make_dist(
        "acme-cli",
        entry_points={
            "optreg.optimizers": {"lion": "acme_cli_mod:Lion", "adamw": "acme_cli_mod:Lion"}
        },
        modules={"acme_cli_mod": MARKER_MODULE},
    )
    return marker


# --- subprocess: the real console script and python -m optreg ----------------------


def test_list_json_console_script_imports_no_target(marker_dist: Path) -> None:
    site = marker_dist.parent / "site"
    env = clean_env(PYTHONPATH=str(site), OPTREG_TEST_MARKER=str(marker_dist))
    proc = run(["list", "--json"], env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    data = json.loads(proc.stdout)
    assert set(data) == {"optimizers", "schedulers"}
    rows = {row["name"]: row for row in data["optimizers"]}
    assert rows["lion"]["provider"] == "acme_cli"
    assert rows["lion"]["version"] == "1.0"
    assert rows["lion"]["target"] == "acme_cli_mod:Lion"
    assert rows["lion"]["available"] is True
    assert rows["acme_cli:adamw"]["status"] == "shadowed"
    assert rows["acme_cli:adamw"]["shadowed_by"] == "optreg:adamw"
    assert rows["adamw"]["provider"] == "optreg"
    assert not marker_dist.exists(), "`optreg list` imported a plugin target"
    # every name the library lists is in the JSON, nothing else (plus the qualified one)
    assert {r["name"] for r in data["schedulers"]} == set(optreg.list_schedulers())
    assert {r["canonical_name"] for r in data["optimizers"]} == set(optreg.list_optimizers())


def test_list_text_python_m_imports_no_target(marker_dist: Path) -> None:
    site = marker_dist.parent / "site"
    env = clean_env(PYTHONPATH=str(site), OPTREG_TEST_MARKER=str(marker_dist))
    proc = run(["list", "optimizers"], module=True, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"optimizers ({len(optreg.optimizers.entries())})"
    assert lines[1].split() == ["name", "provider", "available", "description"]
    assert any(re.match(r"lion\s+acme_cli 1\.0\s+yes", x) for x in lines)
    assert any(re.match(r"acme_cli:adamw\s+acme_cli 1\.0\s+yes", x) for x in lines)
    assert "  acme_cli:adamw: shadowed by optreg:adamw" in lines
    assert "schedulers (" not in proc.stdout
    assert not marker_dist.exists(), "`optreg list` imported a plugin target"


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


def test_unknown_name_python_m_exits_2_one_line() -> None:
    proc = run(["info", "adamx"], module=True)
    assert proc.returncode == 2
    line = one_error_line(proc.stderr)
    assert line.startswith(
        "optreg info: error: unknown optimizer or scheduler 'adamx'; did you mean "
    )
    assert "'adamax'" in line or "'adamw'" in line
    assert proc.stdout == ""


# --- in-process: errors ---------------------------------------------------------------


@pytest.fixture
def out_png(tmp_path: Path) -> str:
    return str(tmp_path / "x.png")


STEPS = ["--num-warmup-steps", "2", "--num-training-steps", "10"]

ERRORS: list[tuple[list[str], str]] = [
    ([], r"^optreg: error: the following arguments are required: COMMAND"),
    (["list", "optimisers"], r"^optreg list: error: argument kind: invalid choice: 'optimisers'"),
    (
        ["info", "--kind", "optimizer", "adamx"],
        r"^optreg info: error: unknown optimizer 'adamx'; did you mean ",
    ),
    (
        ["info", "zzzzzz"],
        r"^optreg info: error: unknown optimizer or scheduler 'zzzzzz' \(see `optreg list`\)$",
    ),
    (
        ["plot", "cosinee", *STEPS, "-o", "{out}"],
        r"unknown scheduler 'cosinee'; did you mean 'cosine'",
    ),
    (
        ["plot", "cosine", "--num-training-steps", "10", "-o", "{out}"],
        r"cosine requires `num_warmup_steps`",
    ),
    (
        ["plot", "cosine", "--num-warmup-steps", "1", "-o", "{out}"],
        r"--num-training-steps is required",
    ),
    (["plot", "cosine", *STEPS], r"the following arguments are required: -o/--output"),
    (
        ["plot", "cosine", *STEPS, "--kw", "num_cycles", "-o", "{out}"],
        r"argument --kw: expected KEY=VALUE or NAME.KEY=VALUE with KEY a Python identifier, "
        r"got 'num_cycles'",
    ),
    (
        ["plot", "cosine", *STEPS, "--kw", "1x=2", "-o", "{out}"],
        r"expected KEY=VALUE .* got '1x=2'",
    ),
    (["plot", "cosine", *STEPS, "--kw", "=2", "-o", "{out}"], r"expected KEY=VALUE .* got '=2'"),
    (
        ["plot", "cosine", *STEPS, "--kw", ".x=2", "-o", "{out}"],
        r"expected KEY=VALUE .* got '.x=2'",
    ),
    (
        ["plot", "cosine", *STEPS, "--kw", "linear.num_cycles=2", "-o", "{out}"],
        r"--kw linear.num_cycles: 'linear' is not among the schedules given \(cosine\)$",
    ),
    (
        ["plot", "cosine", *STEPS, "--kw", "cosine.bogus=2", "-o", "{out}"],
        r"scheduler 'cosine': .*unexpected keyword argument 'bogus'",
    ),
    (
        ["compare", "sgd", "--scheduler", "cosine", "--kw", "linear.x=1", "-o", "{out}"],
        r"--kw linear.x: 'linear' is not among the schedules given \(cosine\)$",
    ),
    (
        ["plot", "cosine", *STEPS, "--kw", "foo=1", "-o", "{out}"],
        r"--kw foo: no schedule among cosine takes 'foo'",
    ),
    (
        ["plot", "cosine", *STEPS, "--kw", "num_cycles=1", "--kw", "num_cycles=2", "-o", "{out}"],
        r"--kw num_cycles given twice \(1 and 2\)",
    ),
    (
        ["plot", "cosine", "--num-warmup-steps", "-3", "--num-training-steps", "10", "-o", "{out}"],
        r"argument --num-warmup-steps: expected an integer >= 0, got -3",
    ),
    (
        ["plot", "cosine", *STEPS, "--lr", "nan", "-o", "{out}"],
        r"argument --lr: expected a finite number > 0, got 'nan'",
    ),
    (
        ["plot", "cosine", *STEPS, "-o", "/nonexistent-dir/x.png"],
        r"-o '/nonexistent-dir/x.png': directory '/nonexistent-dir' does not exist",
    ),
    (
        ["compare", "adamx", "--steps", "2", "-o", "{out}"],
        r"^optreg compare: error: unknown optimizer 'adamx'; did you mean ",
    ),
    (
        ["compare", "sgd", "--scheduler", "cosinee", "--steps", "2", "-o", "{out}"],
        r"unknown scheduler 'cosinee'",
    ),
    (
        ["compare", "sgd", "--steps", "0", "-o", "{out}"],
        r"argument --steps: expected an integer >= 1, got 0",
    ),
    (
        ["compare", "sgd", "--lr", "-1", "-o", "{out}"],
        r"argument --lr: expected a finite number > 0, got '-1'",
    ),
    (
        ["compare", "sgd", "--kw", "power=2", "-o", "{out}"],
        r"--kw sets schedule arguments and needs --scheduler",
    ),
    (
        [
            "compare",
            "sgd",
            "--scheduler",
            "cosine",
            "--kw",
            "bogus=2",
            "--steps",
            "2",
            "-o",
            "{out}",
        ],
        r"optimizer 'sgd' with scheduler 'cosine': .*unexpected keyword argument 'bogus'",
    ),
]


@pytest.mark.parametrize(("argv", "pattern"), ERRORS, ids=[" ".join(a)[:60] for a, _ in ERRORS])
def test_usage_errors_exit_2_with_one_line(
    argv: list[str],
    pattern: str,
    out_png: str,
    capsys: pytest.CaptureFixture[str],
    fresh_registry: None,
) -> None:
    code = main([a.format(out=out_png) for a in argv])
    captured = capsys.readouterr()
    assert code == 2
    assert re.search(pattern, one_error_line(captured.err)), captured.err
    assert captured.out == ""
    assert not Path(out_png).exists()


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


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("list", "info", "check", "plot", "compare"):
        assert command in out


# --- parse_kw -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("num_cycles=2", ("num_cycles", 2)),
        ("power=1.5", ("power", 1.5)),
        ("min_lr=1e-5", ("min_lr", 1e-5)),
        ("mode=max", ("mode", "max")),
        ("mode='max'", ("mode", "max")),
        ("flag=True", ("flag", True)),
        ("x=None", ("x", None)),
        ("betas=(0.9, 0.99)", ("betas", (0.9, 0.99))),
        ("lrs=[0.1, 0.2]", ("lrs", [0.1, 0.2])),
        (" key = 3 ", ("key", 3)),
        ("expr=1+", ("expr", "1+")),
        ("a=b=c", ("a", "b=c")),
        ("empty=", ("empty", "")),
    ],
)
def test_parse_kw(text: str, expected: tuple[str, Any]) -> None:
    assert parse_kw(text) == expected


# --- list, info, check (in process) ----------------------------------------------------


def test_list_json_ambiguous_names_are_qualified(
    make_dist: MakeDist, capsys: pytest.CaptureFixture[str]
) -> None:
    for dist in ("one-dist", "two-dist"):
        make_dist(
            dist, entry_points={"optreg.schedulers": {"twin": f"{dist.replace('-', '_')}_mod:f"}}
        )
    assert main(["list", "schedulers", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data) == ["schedulers"]
    twins = [r for r in data["schedulers"] if r["canonical_name"] == "twin"]
    assert [(r["name"], r["status"]) for r in twins] == [
        ("one_dist:twin", "ambiguous"),
        ("two_dist:twin", "ambiguous"),
    ]
    # the target modules do not exist: listing says so without importing anything
    assert [r["available"] for r in twins] == [False, False]
    assert twins[0]["reason"] == "module 'one_dist_mod' of target 'one_dist_mod:f' is not installed"


def test_list_text_matches_registry(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, fresh_registry: None
) -> None:
    monkeypatch.setenv("OPTREG_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    names = [
        line.split()[0]
        for line in out.splitlines()
        if line and not line.startswith(("-", " ", "name", "optimizers", "schedulers"))
    ]
    assert names == optreg.list_optimizers() + optreg.list_schedulers()


def _sched_factory(optimizer: Any, *, num_warmup_steps: int, power: float = 2.0) -> Any:
    """A test schedule with a required warmup.

    Second paragraph, not shown.
    """
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)


def test_info_json_and_text(capsys: pytest.CaptureFixture[str], fresh_registry: None) -> None:
    optreg.register_scheduler("cli-test-sched", _sched_factory, aliases=["cli_alias"])
    assert main(["info", "CLI_TEST_SCHED", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data) == ["scheduler"]
    info = data["scheduler"]
    assert info["name"] == "cli_test_sched"
    assert info["aliases"] == ["cli_alias"]
    assert info["required_args"] == ["num_warmup_steps"]
    assert (
        info["signature"]
        == "(optimizer: 'Any', *, num_warmup_steps: 'int', power: 'float' = 2.0) -> 'Any'"
    )
    assert info["doc"] == "A test schedule with a required warmup."
    assert info["provider"] == "(registered at run time)"
    assert info["target"] == f"{__name__}:_sched_factory"
    assert main(["info", "cli_alias"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0] == "cli_test_sched  (scheduler)"
    assert "  required:       num_warmup_steps" in text
    assert "  aliases:        cli_alias" in text
    assert text[-1] == "  A test schedule with a required warmup."


def test_info_name_in_both_registries(
    capsys: pytest.CaptureFixture[str], fresh_registry: None
) -> None:
    optreg.register_optimizer("cli_both", torch.optim.SGD)
    optreg.register_scheduler("cli_both", _sched_factory)
    assert main(["info", "cli_both", "--json"]) == 0
    assert sorted(json.loads(capsys.readouterr().out)) == ["optimizer", "scheduler"]
    assert main(["info", "cli_both", "--kind", "optimizer", "--json"]) == 0
    assert list(json.loads(capsys.readouterr().out)) == ["optimizer"]


def test_info_ambiguous_exits_2(make_dist: MakeDist, capsys: pytest.CaptureFixture[str]) -> None:
    for dist in ("one-dist", "two-dist"):
        make_dist(dist, entry_points={"optreg.optimizers": {"twin": "torch.optim:SGD"}})
    assert main(["info", "twin"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line == (
        "optreg info: error: optimizer name 'twin' is provided by several plugins: "
        "one_dist:twin, two_dist:twin; use one of these qualified names"
    )
    assert main(["info", "two_dist:twin", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["optimizer"]["provider"] == "two_dist"


def test_check_builtins_load(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, fresh_registry: None
) -> None:
    monkeypatch.setenv("OPTREG_DISABLE_PLUGIN_AUTOLOAD", "1")
    code = main(["check"])
    out = capsys.readouterr().out
    assert "BROKEN" not in out
    assert code == 0
    n = len(optreg.optimizers.entries()) + len(optreg.schedulers.entries())
    assert out.splitlines()[-1].startswith(f"checked {n} entries (")


def test_check_reports_broken_shadowed_and_ambiguous(
    make_dist: MakeDist, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPTREG_BLOCK_PLUGINS", "optreg")  # only this test's dists
    make_dist("good-dist", entry_points={"optreg.optimizers": {"good": "torch.optim:SGD"}})
    assert main(["check"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "checked 1 entries (1 optimizers, 0 schedulers): 0 broken, 0 warnings, "
        "0 unavailable (optional dependency missing)"
    ]
    make_dist("twin-a", entry_points={"optreg.optimizers": {"good": "torch.optim:Adam"}})
    make_dist("twin-b", entry_points={"optreg.optimizers": {"good": "torch.optim:Adam"}})
    # warnings only: exit 0, or 1 with --strict
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert (
        "WARNING      optimizer name 'good' is ambiguous (provided by good_dist:good, twin_a:good, twin_b:good); use a qualified name"
        in out
    )
    assert main(["check", "--strict"]) == 1
    capsys.readouterr()
    make_dist(
        "bad-hook",
        entry_points={"optreg": {"bad": "bad_hook_mod"}},
        modules={"bad_hook_mod": "raise RuntimeError('boom')"},
    )
    make_dist(
        "bad-target",
        entry_points={"optreg.schedulers": {"gone": "no_such_module_xyz:f", "notfn": "math:pi"}},
    )
    assert main(["check"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert "BROKEN       plugin bad_hook (optreg: bad = bad_hook_mod): RuntimeError: boom" in lines
    assert any(
        line.startswith("BROKEN       scheduler bad_target:gone: PluginLoadError: ")
        and "No module named 'no_such_module_xyz'" in line
        for line in lines
    )
    assert (
        "BROKEN       scheduler bad_target:notfn: target math:pi is not callable (float)" in lines
    )
    assert lines[-1].startswith(
        "checked 5 entries (3 optimizers, 2 schedulers): 3 broken, 1 warning,"
    )


def test_check_shadowed_builtin_is_a_warning(
    marker_dist: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["check"])
    out = capsys.readouterr().out
    assert (
        "WARNING      optimizer 'adamw' from acme_cli is shadowed by optreg:adamw; "
        "reachable only as 'acme_cli:adamw'"
    ) in out.splitlines()
    assert "BROKEN       optimizer acme_cli" not in out
    assert code == (1 if "BROKEN" in out else 0)
    assert marker_dist.exists()  # check does import targets


# --- plot: exact curves --------------------------------------------------------------------


def test_lr_curve_linear_matches_formula(fresh_registry: None) -> None:
    w, t, lr = 4, 20, 0.5
    curve = _plot.lr_curve("linear", lr=lr, num_warmup_steps=w, num_training_steps=t)
    expected = [lr * (s / w if s < w else max(0.0, (t - s) / (t - w))) for s in range(t)]
    assert curve.lrs == pytest.approx(expected, rel=1e-12, abs=0)
    assert curve.label == "linear"
    assert not curve.metric_driven


def _plateau(optimizer: Any, **kwargs: Any) -> ReduceLROnPlateau:
    return ReduceLROnPlateau(optimizer, **kwargs)


def test_lr_curve_metric_driven_gets_synthetic_plateau(fresh_registry: None) -> None:
    optreg.register_scheduler("cli_plateau", _plateau)
    curve = _plot.lr_curve("cli_plateau", lr=1.0, num_warmup_steps=None, num_training_steps=100)
    assert curve.metric_driven
    assert curve.label == "cli_plateau (fed a synthetic plateauing loss)"
    # the loss falls until step 50, then stays at 0.1: ReduceLROnPlateau (patience 10,
    # factor 0.1) cuts the lr after 11 bad steps, i.e. after steps 61, 72, 83 and 94
    expected = [1.0] * 62 + [0.1] * 11 + [0.01] * 11 + [1e-3] * 11 + [1e-4] * 5
    assert curve.lrs == pytest.approx(expected, rel=1e-9)
    assert [_plot.synthetic_loss(s, 100) for s in (0, 25, 50, 99)] == pytest.approx(
        [1.0, 0.325, 0.1, 0.1]
    )


def test_plot_kw_applies_where_accepted(
    out_png: str, capsys: pytest.CaptureFixture[str], fresh_registry: None
) -> None:
    optreg.register_scheduler("cli_plateau", _plateau)
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
    drawn: list[_plot.LrCurve] = []
    monkeypatch.setattr(_plot, "save_lr_figure", lambda curves, *a, **k: drawn.extend(curves))
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
    drawn: list[_plot.LrCurve] = []
    monkeypatch.setattr(_plot, "save_lr_figure", lambda curves, *a, **k: drawn.extend(curves))
    optreg.register_scheduler("cli_plateau", _plateau)  # takes **kwargs only
    argv = ["plot", "cosine", "cli_plateau", "--num-warmup-steps", "0", "--num-training-steps"]
    argv += ["5", "--kw", "num_cycles=1", "--kw", "factor=0.5", "-o", out_png]
    assert main(argv) == 0
    cosine, plateau = drawn
    assert cosine.kwargs == (("num_cycles", 1),)
    assert plateau.kwargs == (("factor", 0.5),)
    assert plateau.label == "cli_plateau (fed a synthetic plateauing loss, factor=0.5)"


# --- compare -------------------------------------------------------------------------------


def test_make_task_deterministic_and_independent_of_global_rng() -> None:
    torch.manual_seed(1)
    a = _compare.make_task(7)
    torch.manual_seed(2)
    b = _compare.make_task(7)
    c = _compare.make_task(8)
    assert torch.equal(a.x_train, b.x_train)
    assert torch.equal(a.y_test, b.y_test)
    assert torch.equal(a.batches(5), b.batches(5))
    assert not torch.equal(a.x_train, c.x_train)
    sa, sb = _compare.make_student(a), _compare.make_student(b)
    assert all(torch.equal(p, q) for p, q in zip(sa.parameters(), sb.parameters(), strict=True))
    assert len(a.y_train.unique()) == a.classes  # every class occurs


def test_train_matches_a_plain_torch_loop(fresh_registry: None) -> None:
    task = _compare.make_task(3)
    steps, lr = 15, 0.2
    result = _compare.train("sgd", task, steps=steps, lr=lr, progress=False)
    # the same run written out by hand
    model = _compare.make_student(task)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    losses = []
    for idx in task.batches(steps):
        opt.zero_grad()
        loss = loss_fn(model(task.x_train[idx]), task.y_train[idx])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        final = loss_fn(model(task.x_train), task.y_train).item()
        acc = (model(task.x_test).argmax(1) == task.y_test).float().mean().item()
    assert result.losses == losses
    assert result.final_loss == final
    assert result.accuracy == acc
    assert result.state_bytes == 0
    assert result.seconds_per_step > 0


def test_state_bytes_counts_each_tensor_once() -> None:
    task = _compare.make_task(0)
    model = _compare.make_student(task)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=False)
    model(task.x_train[:4]).sum().backward()
    opt.step()
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == (32 * 128 + 128) + (128 * 5 + 5)
    # exp_avg + exp_avg_sq in fp32, plus one fp32 step scalar per parameter tensor
    assert _compare.state_bytes(opt) == 2 * 4 * n_params + 4 * 4
    shared = torch.zeros(10)
    opt.state[shared] = {"a": shared, "b": shared, "c": [shared[:5]]}  # views of one buffer
    assert _compare.state_bytes(opt) == 2 * 4 * n_params + 4 * 4 + 40 + 20


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
    optreg.register_scheduler("cli_plateau", _plateau)
    assert _compare.needs_closure(_step_closure_optimizer([torch.zeros(1, requires_grad=True)]))
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
