"""optreg.prefer / OPTREG_PREFER / [tool.optreg] prefer: which provider a shared plain name reaches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import rediscover

import optreg
from optreg import AmbiguousNameError
from optreg.cli import main

if TYPE_CHECKING:
    from conftest import MakeDist


@pytest.fixture
def two_lions(make_dist: MakeDist, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Two plugins providing ``lion`` (SGD and Adam, to tell them apart), run from a
    directory with no pyproject.toml and no OPTREG_PREFER."""
    make_dist("acme-one", entry_points={"optreg.optimizers": {"lion": "torch.optim:SGD"}})
    make_dist("acme-two", entry_points={"optreg.optimizers": {"lion": "torch.optim:Adam"}})
    monkeypatch.delenv("OPTREG_PREFER", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    rediscover()


def _pyproject(table: str) -> None:
    Path("pyproject.toml").write_text(f"[project]\nname = 'mine'\n\n{table}\n")


def test_without_a_preference_the_name_is_ambiguous_and_says_how_to_choose(
    two_lions: None,
) -> None:
    with pytest.raises(
        AmbiguousNameError,
        match=r"'lion' is provided by several plugins: acme_one:lion, acme_two:lion; use one "
        r"of these qualified names, or prefer a provider: optreg.prefer\('acme_one'\), "
        r"OPTREG_PREFER=acme_one or \[tool.optreg\] prefer = \['acme_one'\] in pyproject.toml",
    ):
        optreg.optimizers.resolve("lion")


@pytest.mark.parametrize("form", ["prefer", "env", "pyproject", "pyproject-above"])
def test_each_form_makes_the_plain_name_resolve(
    two_lions: None, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    if form == "prefer":
        optreg.prefer("acme-two")
        where = "optreg.prefer()"
    elif form == "env":
        monkeypatch.setenv("OPTREG_PREFER", "ACME_two, acme-one")
        where = "OPTREG_PREFER"
    else:
        _pyproject('[tool.optreg]\nprefer = ["acme-two"]')
        where = str(Path.cwd() / "pyproject.toml") + " [tool.optreg] prefer"
        if form == "pyproject-above":
            Path("sub/dir").mkdir(parents=True)
            monkeypatch.chdir("sub/dir")
    entry = optreg.optimizers.resolve("lion")
    assert entry.qualified_name == "acme_two:lion"
    assert optreg.optimizers.preferred_by("lion") == where
    assert "lion" in optreg.list_optimizers() and "acme_one:lion" not in optreg.list_optimizers()
    assert optreg.optimizers.resolve("acme_one:lion").provider == "acme_one"  # still reachable


def test_precedence_run_time_then_environment_then_pyproject(
    two_lions: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _pyproject('[tool.optreg]\nprefer = ["acme-one"]')
    assert optreg.optimizers.resolve("lion").provider == "acme_one"
    monkeypatch.setenv("OPTREG_PREFER", "acme-two")
    assert optreg.optimizers.resolve("lion").provider == "acme_two"
    optreg.prefer("acme-one")
    assert optreg.optimizers.resolve("lion").provider == "acme_one"
    optreg.prefer()  # cleared: the environment decides again
    assert optreg.optimizers.resolve("lion").provider == "acme_two"
    monkeypatch.setenv("OPTREG_PREFER", "someone-else")  # names no provider: the next place
    assert optreg.optimizers.resolve("lion").provider == "acme_one"


def test_a_preference_never_beats_a_builtin(two_lions: None) -> None:
    optreg.prefer("acme-one", "acme-two")
    assert optreg.optimizers.resolve("adamw").provider == "optreg"


def test_list_says_why_and_check_still_reports_the_shadowing(
    two_lions: None, capsys: pytest.CaptureFixture[str]
) -> None:
    optreg.prefer("acme-two")
    assert main(["list", "optimizers"]) == 0
    assert "2 names shared by several providers" in capsys.readouterr().out  # summed up
    assert main(["list", "optimizers", "--conflicts"]) == 0
    out = capsys.readouterr().out
    assert "  acme_one:lion: shadowed by acme_two:lion (preferred by optreg.prefer())" in out
    assert "  lion: reaches acme_two:lion (preferred by optreg.prefer())" in out
    assert main(["list", "optimizers", "--json"]) == 0
    rows = {r["qualified_name"]: r for r in json.loads(capsys.readouterr().out)["optimizers"]}
    assert rows["acme_two:lion"]["status"] == "ok"
    assert rows["acme_two:lion"]["preferred_by"] == "optreg.prefer()"
    assert rows["acme_one:lion"]["status"] == "shadowed"
    assert main(["check"]) == 0
    assert "WARNING      optimizer 'lion' from acme_one is shadowed by acme_two:lion" in (
        capsys.readouterr().out
    )


@pytest.mark.parametrize(
    "table",
    ["[tool.optreg]\nprefer = 3", "[tool.other]\nprefer = ['acme-two']", "not toml ["],
)
def test_a_pyproject_without_a_usable_preference_leaves_it_ambiguous(
    two_lions: None, table: str
) -> None:
    _pyproject(table)
    with pytest.raises(AmbiguousNameError):
        optreg.optimizers.resolve("lion")


def test_prefer_refuses_what_is_not_a_distribution_name() -> None:
    with pytest.raises(TypeError, match=r"optreg.prefer takes distribution names \(str\), got 3"):
        optreg.prefer(3)  # type: ignore[arg-type]
