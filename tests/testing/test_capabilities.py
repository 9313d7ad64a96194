"""optreg.testing._capabilities: compile and bf16 measured per name; the stored table."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import torch

import optreg
from optreg.builtin.capabilities import (
    CAP_END,
    CAP_START,
    CAPABILITIES,
    Verdict,
    parse,
    published,
    row,
    table,
)
from optreg.cli import main
from optreg.testing import (
    capability_table,
    fsdp2_missing,
    measure_capabilities,
    measure_distributed,
    measure_local,
    stale_rows,
)

pytestmark = pytest.mark.usefixtures("fresh_registry")


SETUP = "planted:register"


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch, fresh_registry: None) -> None:
    """The planted names here and, through PYTHONPATH and ``setup``, in the workers."""
    import planted as module

    here = str(Path(module.__file__).parent)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    )
    module.register()


@pytest.mark.usefixtures("planted")
def test_a_step_that_recompiles_and_one_that_breaks_bf16_are_failed_with_the_reason() -> None:
    growing = measure_capabilities("growing", setup=SETUP)
    assert growing["compile"].status == "fail"
    assert "recompile" in growing["compile"].detail
    assert growing["bf16"].status == "pass"
    nan = measure_capabilities("nan_bf16")
    assert nan["bf16"].status == "fail"
    assert nan["bf16"].detail == "bf16 parameters: NaN or inf after the steps"
    assert nan["compile"].status == "pass"
    assert "0 recompiles in 30 scheduled steps (tensor lr)" in nan["compile"].detail
    assert (
        nan["ddp"]
        == nan["fsdp2"]
        == Verdict("n/a", "registered at runtime: worker processes cannot see it (pass setup=)")
    )
    assert growing["ddp"] == Verdict(
        "pass",
        "2 gloo ranks under DistributedDataParallel vs one process, 5 steps: max diff 0 (exact)",
    )


@pytest.mark.usefixtures("planted")
def test_a_step_that_breaks_under_dtensor_fails_fsdp2_only() -> None:
    if missing := fsdp2_missing():
        pytest.skip(missing)
    verdicts = measure_capabilities("mixes_dtensor", setup=SETUP)
    assert verdicts["ddp"].status == "pass"
    assert verdicts["compile"].status == verdicts["bf16"].status == "pass"
    assert verdicts["fsdp2"].status == "fail"
    assert "got mixed torch.Tensor and DTensor" in verdicts["fsdp2"].detail


@pytest.mark.usefixtures("planted")
def test_a_name_that_kills_a_rank_fails_and_the_next_names_are_still_measured() -> None:
    found = measure_distributed(["sgd", "dies_on_rank_1", "adamw"], setup=SETUP)
    assert list(found) == ["sgd", "dies_on_rank_1", "adamw"]
    missing = fsdp2_missing()
    for name in ("sgd", "adamw"):
        assert found[name]["ddp"].status == "pass"
        fsdp2 = Verdict("n/a", missing) if missing else Verdict("pass", found[name]["fsdp2"].detail)
        assert found[name]["fsdp2"] == fsdp2
    for verdict in found["dies_on_rank_1"].values():
        assert verdict.status == "fail"
        assert verdict.detail.startswith("the ranks hung or died on it")


def test_what_cannot_be_measured_says_why() -> None:
    lbfgs = measure_capabilities("lbfgs")
    assert {v.status for v in lbfgs.values()} == {"n/a"}
    assert lbfgs["compile"].detail == "it steps only with a closure"


def test_the_stored_table_is_current() -> None:
    """Re-measures every builtin (the table must never claim what torch no longer does)."""
    stored = table()
    if stored["torch"] != torch.__version__:
        pytest.skip(
            f"the table was measured with torch {stored['torch']}, this is {torch.__version__}"
        )
    measured = capability_table()
    here = {
        name
        for name, caps in measured["optimizers"].items()
        if not caps["compile"][1].startswith("not available here")
    }
    assert (
        stale_rows(
            {"optimizers": {n: r for n, r in stored["optimizers"].items() if n in here}},
            {"optimizers": {n: r for n, r in measured["optimizers"].items() if n in here}},
        )
        == []
    ), "run: python -m optreg.testing --capabilities"
    assert set(stored["optimizers"]) == set(measured["optimizers"])


def test_stale_rows_names_what_changed() -> None:
    passing = {c: ["pass", ""] for c in CAPABILITIES}
    old = {"optimizers": {"a": passing}}
    new = {"optimizers": {"a": {**passing, "compile": ["fail", "3 recompiles"]}, "b": passing}}
    assert stale_rows(old, new) == [
        "b: not in the stored table",
        "a.compile: pass -> fail (3 recompiles)",
    ]


def test_list_supports_shows_exactly_the_names_measured_to_pass(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["list", "--supports", "compile,bf16", "--json"]) == 0
    listed = {r["name"] for r in json.loads(capsys.readouterr().out)["optimizers"]}
    want = {
        name
        for name, caps in table()["optimizers"].items()
        if caps["compile"][0] == caps["bf16"][0] == "pass"
    }
    assert listed == want and "sgd" in listed and "lbfgs" not in listed
    assert main(["list", "--supports", "fsdp2", "--json"]) == 0
    listed = {r["name"] for r in json.loads(capsys.readouterr().out)["optimizers"]}
    assert listed == {n for n, caps in table()["optimizers"].items() if caps["fsdp2"][0] == "pass"}
    assert "muon_adamw" in listed and "adamw_8bit" not in listed
    assert main(["list", "--supports", "compile"]) == 0
    assert "never measured (unknown, not listed)" in capsys.readouterr().out


def test_a_name_never_measured_is_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    optreg.register_optimizer("mine", torch.optim.SGD)
    assert row("mine") is None
    assert main(["info", "mine"]) == 0
    assert "capabilities:   unknown (never measured)" in capsys.readouterr().out
    assert main(["list", "--supports", "compile", "--json"]) == 0
    assert "mine" not in {r["name"] for r in json.loads(capsys.readouterr().out)["optimizers"]}


def test_info_shows_the_row(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "sgd", "--json"]) == 0
    caps = json.loads(capsys.readouterr().out)["optimizer"]["capabilities"]
    assert caps == {
        "verdicts": {
            c: {"status": s, "detail": d} for c, (s, d) in table()["optimizers"]["sgd"].items()
        },
        "torch": table()["torch"],
        "source": "optreg's packaged table",
    }


PUBLISHED = f"""# acme-opt

Some prose.

{CAP_START}
Measured with torch 9.9.0+cpu on x86_64, Linux, Python 3.11.7: of 2 optimizers, compile 1, bf16 2, ddp 1, fsdp2 0 pass.

| name | compile | bf16 | ddp | fsdp2 |
| --- | --- | --- | --- | --- |
| `acme_fast` | pass | pass | pass | fail: DTensor: in-place op needs a redistribute |
| `acme_slow` | fail: 3 recompiles in 30 steps | pass | n/a: steps with a closure | n/a: steps with a closure |
{CAP_END}
"""


def test_a_plugins_published_table_is_read_from_its_metadata(
    make_dist: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """An installed distribution's README (its metadata's description) holds the table
    ``python -m optreg.testing README.md --provider DIST --capabilities`` wrote there:
    ``optreg info`` and ``optreg list --supports`` read a plugin's names from it."""
    eps = {
        "acme_fast": "torch.optim:SGD",
        "acme_slow": "torch.optim:LBFGS",
        "acme_new": "torch.optim:Adam",
    }
    make_dist("acme-opt", entry_points={"optreg.optimizers": eps}, description=PUBLISHED)
    assert main(["info", "acme_slow", "--json"]) == 0
    caps = json.loads(capsys.readouterr().out)["optimizer"]["capabilities"]
    assert caps == {
        "verdicts": {
            "compile": {"status": "fail", "detail": "3 recompiles in 30 steps"},
            "bf16": {"status": "pass", "detail": ""},
            "ddp": {"status": "n/a", "detail": "steps with a closure"},
            "fsdp2": {"status": "n/a", "detail": "steps with a closure"},
        },
        "torch": "9.9.0+cpu",
        "source": "acme-opt's README",
    }
    assert main(["info", "acme_fast"]) == 0
    assert (
        "capabilities:   compile pass; bf16 pass; ddp pass; fsdp2 fail (DTensor: in-place op "
        "needs a redistribute) [torch 9.9.0+cpu, acme-opt's README]"
    ) in capsys.readouterr().out
    assert main(["info", "acme_new"]) == 0  # not in the table: never measured
    assert "capabilities:   unknown (never measured)" in capsys.readouterr().out
    assert main(["list", "--supports", "ddp", "--json"]) == 0
    listed = {r["name"] for r in json.loads(capsys.readouterr().out)["optimizers"]}
    assert "acme_fast" in listed and not {"acme_slow", "acme_new"} & listed
    assert "sgd" in listed  # the builtins' table still counts


def test_a_readme_without_a_table_publishes_nothing(make_dist: Any) -> None:
    make_dist(
        "bare-opt",
        entry_points={"optreg.optimizers": {"bare": "torch.optim:SGD"}},
        description="# bare-opt\n\nNo table here.\n",
    )
    entry = optreg.optimizers.resolve("bare")
    assert published(entry.dist)["optimizers"] == {}
    assert row("bare", entry.dist) is None
    assert parse(f"{CAP_START}\nno rows\n{CAP_END}") == {
        "torch": None,
        "machine": None,
        "optimizers": {},
    }


def test_bad_supports_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--supports", "fsdp9"]) == 2
    assert (
        "unknown capability 'fsdp9' (measured: compile, bf16, ddp, fsdp2)"
        in capsys.readouterr().err
    )


def test_the_command_says_when_the_table_is_stale(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from optreg.testing import _capabilities  # the measurement, replaced by a stored table
    from optreg.testing import main as kit_main

    stored = table()
    monkeypatch.setattr(_capabilities, "capability_table", lambda: stored)
    assert kit_main(["--capabilities", "--check"]) == 0
    changed = json.loads(json.dumps(stored))
    changed["optimizers"]["sgd"]["compile"] = ["fail", "2 recompiles"]
    monkeypatch.setattr(_capabilities, "capability_table", lambda: changed)
    assert kit_main(["--capabilities", "--check"]) == 1
    assert "sgd.compile: pass -> fail (2 recompiles)" in capsys.readouterr().err


@pytest.mark.usefixtures("planted")
def test_a_providers_table_is_written_into_its_readme_and_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from optreg.testing import main as kit_main

    readme = tmp_path / "README.md"
    readme.write_text(f"# mine\n\n{CAP_START}\n{CAP_END}\n\nafter\n")
    argv = [str(readme), "--provider", "__runtime__", "--capabilities"]
    assert kit_main(argv) == 0
    text = readme.read_text()
    assert text.startswith("# mine\n") and text.endswith(f"{CAP_END}\n\nafter\n")
    assert f"Measured with torch {torch.__version__} on " in text
    assert "of 5 optimizers, compile 4, bf16 4, ddp 0, fsdp2 0 pass." in text
    rows = {n: [caps[c][0] for c in CAPABILITIES] for n, caps in parse(text)["optimizers"].items()}
    assert rows == {
        "breaks": ["pass", "pass", "n/a", "n/a"],
        "dies_on_rank_1": ["pass", "pass", "n/a", "n/a"],
        "growing": ["fail", "pass", "n/a", "n/a"],
        "mixes_dtensor": ["pass", "pass", "n/a", "n/a"],
        "nan_bf16": ["pass", "fail", "n/a", "n/a"],
    }
    assert "| `nan_bf16` | pass | fail: bf16 parameters: NaN or inf after the steps |" in text
    assert kit_main([*argv, "--check"]) == 0
    readme.write_text(text.replace("| `growing` | fail:", "| `growing` | pass:"))
    assert kit_main([*argv, "--check"]) == 1
    assert "the capability table is out of date for ['growing']" in capsys.readouterr().err
    assert kit_main([str(readme), "--provider", "nobody", "--capabilities"]) == 2
    assert "no installed optimizer is provided by nobody" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: tests/test_gpu.py")
def test_the_distributed_checks_on_cuda_say_why_not_without_one() -> None:
    found = measure_distributed(["sgd"], device="cuda")
    assert found == {
        "sgd": {c: Verdict("n/a", "no cuda device with NCCL here") for c in ("ddp", "fsdp2")}
    }


def test_a_name_needing_second_derivatives_is_not_applicable() -> None:
    optreg.register_optimizer(
        "hessian", torch.optim.SGD, metadata={"conformance": {"create_graph": True}}
    )
    why = "it needs backward(create_graph=True) (second derivatives)"
    assert measure_capabilities("hessian") == {c: Verdict("n/a", why) for c in CAPABILITIES}


def test_a_check_that_raises_on_its_own_comparison_is_a_failed_verdict(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from optreg.testing import _capabilities  # its measurement, replaced

    def broken(a: torch.Tensor, b: torch.Tensor) -> float:
        raise RuntimeError("values expected sparse tensor layout but got Strided")

    monkeypatch.setattr(_capabilities, "max_diff", broken)
    verdict = _capabilities.measure_local("sgd")["compile"]
    assert verdict == Verdict(
        "fail",
        "checking it raised RuntimeError: values expected sparse tensor layout but got Strided",
    )


def test_state_kept_beside_the_per_parameter_states_is_not_mistaken_for_one() -> None:
    from planted import KeepsACounter

    optreg.register_optimizer("counter", KeepsACounter)
    assert measure_local("counter")["bf16"] == Verdict("pass", "state bfloat16")


def test_parsing_a_crafted_description_takes_linear_time() -> None:
    """A 600 KB line of repeated headers took minutes (the header's regex backtracked
    over the whole section); lines are now read one by one, each bounded. The bound
    below is a hang guard, 30x what the linear parse takes on a slow machine."""
    import time

    from optreg.builtin.capabilities import CAP_END, CAP_START, parse

    crafted = "Measured with torch 2 on " * 24_000  # 600 KB, one line, no ": of"
    text = f"{CAP_START}\n{crafted}\n| `adamw` | pass | pass | pass | pass |\n{CAP_END}"
    start = time.perf_counter()
    found = parse(text)
    assert time.perf_counter() - start < 3.0
    assert found["torch"] is None and list(found["optimizers"]) == ["adamw"]
    many = f"{CAP_START}\n" + "\n".join([crafted[:4000]] * 150) + f"\n{CAP_END}"
    start = time.perf_counter()
    assert parse(many)["optimizers"] == {}
    assert time.perf_counter() - start < 3.0


@pytest.mark.usefixtures("planted")
def test_a_compiled_step_that_graph_breaks_says_how_often() -> None:
    """Users ask "fullgraph?": a pass names the step's graph breaks, or says it has none."""
    breaks = measure_local("breaks")["compile"]
    assert breaks.status == "pass"
    assert re.search(r"\d+ graphs, \d+ graph breaks? in the step, 0 recompiles", breaks.detail)
    clean = measure_local("sgd")["compile"]
    assert ", no graph break in the step, 0 recompiles" in clean.detail


def test_capabilities_for_a_provider_without_a_file_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from optreg.testing import main as kit_main

    with pytest.raises(SystemExit) as info:
        kit_main(["--capabilities", "--provider", "optreg-example"])
    assert info.value.code == 2
    assert "--capabilities --provider DIST needs the FILE" in capsys.readouterr().err
