"""The ``optreg`` command: real console script and ``python -m optreg`` in subprocesses,
plus in-process ``main(argv)`` runs for the error table and the exact numbers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import torch
from helpers import STEPS, clean_env, one_error_line, run

import optreg
from optreg.cli import main, parse_kw

if TYPE_CHECKING:
    from conftest import MakeDist


# --- helpers -----------------------------------------------------------------


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
    assert rows["lion"]["provider"] == "acme-cli"  # the project name, as its metadata spells it
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
    assert any(re.match(r"lion\s+acme-cli 1\.0\s+yes", x) for x in lines)
    assert any(re.match(r"acme_cli:adamw\s+acme-cli 1\.0\s+yes", x) for x in lines)
    assert lines[-1] == (
        "  1 name shared by several providers (listed under their dist:name); "
        "`optreg list optimizers --conflicts` shows who reaches each"
    )
    assert "schedulers (" not in proc.stdout
    assert not marker_dist.exists(), "`optreg list` imported a plugin target"
    every = run(["list", "optimizers", "--conflicts"], module=True, env=env)
    assert "  acme_cli:adamw: shadowed by optreg:adamw" in every.stdout.splitlines()


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
        r"--kw linear.x: 'linear' is not among the names given \(sgd, cosine\)$",
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
        r"argument --num-warmup-steps: `num_warmup_steps` must be >= 0, got -3",
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
        ["compare", "sgd", "--scheduler", "cosinee", "--steps", "2", "-o", "{out}"],
        r"unknown scheduler 'cosinee'",
    ),
    (
        ["compare", "sgd", "--steps", "0", "-o", "{out}"],
        r"argument --steps: `steps` must be >= 1, got 0",
    ),
    (
        ["compare", "sgd", "--lr", "-1", "-o", "{out}"],
        r"argument --lr: expected a finite number > 0, got '-1'",
    ),
    (
        ["compare", "sgd", "--kw", "power=2", "-o", "{out}"],
        r"--kw power: no optimizer or schedule given takes 'power'$",
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
        r"--kw bogus: no optimizer or schedule given takes 'bogus'$",
    ),
    (["info", ""], r"^optreg info: error: name must be a non-empty string, got ''$"),
    (
        ["info", "cosine", "--kind", "optimizer"],
        r"unknown optimizer 'cosine'; 'cosine' is a scheduler: `optreg info cosine --kind scheduler`",
    ),
    (["compare", "sgd", "--seed", str(2**70), "-o", "{out}"], r"--seed: a seed is 0 to 9,223"),
    (
        ["compare", "sgd", "--steps", "100000000", "-o", "{out}"],
        r"--steps: `steps` must be at most 100,000, got 100000000",
    ),
    (["compare", "sgd", "--steps", "2.5", "-o", "{out}"], r"--steps: `steps` must be a whole"),
    *(
        (
            [
                "compare",
                "sgd",
                "-o",
                "{out}",
                "--config",
                '{{"num_training_steps": ' + value + "}}",
            ],
            "--config: `num_training_steps` " + message,
        )
        for value, message in (
            ("1e10", r"must be at most 100,000, got 10000000000\.0"),
            ("-5", r"must be >= 1, got -5"),
            ('"abc"', r"must be a whole number of steps >= 1, got str: 'abc'"),
            ("2.5", r"must be a whole number of steps >= 1, got 2\.5"),
        )
    ),
    (
        [
            "plot",
            "cosine",
            "-o",
            "{out}",
            "--config",
            '{{"scheduler": "cosine", "num_training_steps": 0}}',
        ],
        r"--config: `num_training_steps` must be >= 1, got 0",
    ),
    (
        ["compare", "sgd", "-o", "{out}.txt"],
        r"matplotlib cannot write \.txt files; use one of .*\.png",
    ),
    (
        ["plot", "cosine", *STEPS, "--kw", "num_cyclez=2", "-o", "{out}"],
        r"did you mean 'num_cycles'\?$",
    ),
    (["compare", "sgd", "--kw", "momentun=0.9", "-o", "{out}"], r"did you mean 'momentum'\?$"),
    (
        ["plot", "reduce_lr_on_plateau", "--num-training-steps", "99999999", "-o", "{out}"],
        r"is stepped one step at a time \(it is metric-driven\); plotting 99,999,999 steps",
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
    assert twins[0]["reason"] == (
        "module 'one_dist_mod' of target 'one_dist_mod:f' is not installed; install it with: "
        "pip install one_dist_mod"
    )


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


def test_info_ambiguous_shows_every_candidate(
    make_dist: MakeDist, capsys: pytest.CaptureFixture[str]
) -> None:
    for dist in ("one-dist", "two-dist"):
        make_dist(dist, entry_points={"optreg.optimizers": {"twin": "torch.optim:SGD"}})
    assert main(["info", "twin"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "'twin' is provided by 2 plugins; use a dist:name below, or prefer a provider"
    )
    assert "  qualified name: one_dist:twin" in out and "  qualified name: two_dist:twin" in out
    assert main(["info", "two_dist:twin", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["optimizer"]["provider"] == "two-dist"


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
        "BROKEN       scheduler bad_target:notfn: PluginLoadError: scheduler 'notfn' from "
        "distribution 'bad_target' (entry point optreg.schedulers: notfn = math:pi): target "
        "'math:pi' is float 3.141592653589793, not a callable factory"
    ) in lines
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


# --- compare -------------------------------------------------------------------------------


def test_version() -> None:
    proc = run(["--version"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"optreg {optreg.__version__}"


def test_dependency_log_noise_stays_out_of_the_output() -> None:
    """bitsandbytes logs a note at import ("Failed to load CPU gemm_4bit_forward from
    kernels-community ...") that is not optreg's output; -v shows it."""
    if not optreg.optimizers.status(optreg.optimizers["adamw_8bit"])[0]:
        pytest.skip("needs bitsandbytes")
    quiet = run(["info", "adamw_8bit"])
    assert quiet.returncode == 0
    assert quiet.stderr == ""
    assert run(["-v", "info", "adamw_8bit"]).returncode == 0


def test_list_and_info_print_a_plugins_description_safely(
    capsys: pytest.CaptureFixture[str], fresh_registry: None
) -> None:
    def loud(params: Any, lr: float = 0.1) -> Any:
        """First \x1b[31mred\x1b[0m line\x08.\x1b[2J\x1b]0;pwned\x07"""
        return torch.optim.SGD(params, lr=lr)

    optreg.register_optimizer(
        "loud", loud, description="evil \x1b[31mred\x1b[0m\nsecond line\r\x1b[1Aover"
    )
    assert main(["list", "optimizers"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out
    [row] = [line for line in out.splitlines() if line.startswith("loud ")]
    assert row.endswith("evil red second line over")
    assert main(["info", "loud"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\x08" not in out
    assert "  First red line\\x08." in out
    assert main(["list", "optimizers", "--json"]) == 0  # JSON escapes it; kept as given
    assert "evil \\u001b[31mred" in capsys.readouterr().out


def test_list_imports_no_torch_and_no_target_but_runs_a_hook_plugins_module(
    tmp_path: Path,
) -> None:
    """What the README says `optreg list` imports: no torch, no target a name points
    at; a hook plugin's own module runs (its optreg_add_optimizers registers names)."""
    import subprocess
    import sys

    site = tmp_path / "site"
    (site / "acme_hooks_list-1.0.dist-info").mkdir(parents=True)
    (site / "acme_hooks_list-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: acme-hooks-list\nVersion: 1.0\n"
    )
    (site / "acme_hooks_list-1.0.dist-info" / "entry_points.txt").write_text(
        "[optreg]\nhooks = acme_hooks_list\n"
    )
    (site / "acme_hooks_list.py").write_text(
        "from optreg import hookimpl\n"
        "RAN = True\n"
        "@hookimpl\n"
        "def optreg_add_optimizers(registry):\n"
        "    registry.register('acme_hooked', 'acme_hooked_target:Opt')\n"
    )
    code = (
        "import sys\n"
        "from optreg.cli import main\n"
        "assert main(['list']) == 0\n"
        "print('torch' in sys.modules, 'acme_hooks_list' in sys.modules,"
        " 'acme_hooked_target' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=clean_env(PYTHONPATH=str(site)),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "acme_hooked " in proc.stdout  # listed
    assert proc.stdout.splitlines()[-1] == "False True False"
