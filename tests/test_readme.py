"""Every ```python block of the README and of docs/ runs as written (each in a fresh
namespace), and the console blocks that show the ``optreg compare`` table say what the
command prints.

The integration guides' blocks need transformers, Lightning and Hydra: they run in the
integrations env (tests/integrations/test_readme_integrations.py).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from helpers import doc_pages, python_blocks

import optreg

BLOCKS = python_blocks(integrations=False)  # the integration guides': tests/integrations


def test_the_pages_have_python_blocks() -> None:
    pages = {page for page, _, _ in BLOCKS}
    assert "README.md" in pages and len(pages) >= 8 and len(BLOCKS) >= 15


@pytest.mark.parametrize(("page", "line", "code"), BLOCKS, ids=[f"{p}:{n}" for p, n, _ in BLOCKS])
def test_block_runs(
    page: str,
    line: int,
    code: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fresh_registry: None,
) -> None:
    if "_8bit" in code and not optreg.optimizers.status(optreg.optimizers["adamw_8bit"])[0]:
        pytest.skip("needs bitsandbytes (pip install optreg[bnb])")
    if "muon" in code and not optreg.optimizers.status(optreg.optimizers["muon"])[0]:
        pytest.skip("needs torch.optim.Muon (torch >= 2.9)")
    monkeypatch.chdir(tmp_path)  # a block may write files (ckpt.pt)
    namespace: dict[str, object] = {"__name__": f"doc_line{line}"}
    exec(compile(code, f"{page}:{line}", "exec"), namespace)
    hook = namespace.get("optreg_add_optimizers")
    if callable(hook):  # a plugin module: its hook registers what it says, lazily
        from optreg.hookspecs import PluginRegistry

        with optreg.Catalog(plugins=[]):  # a catalog of this block's names alone
            hook(PluginRegistry(optreg.optimizers, "mypkg", None, "mypkg:readme"))
            entry = optreg.optimizers.resolve("mypkg:lion_pt")
        assert entry.target == "lion_pytorch:Lion" and entry.extra == "lion"
        assert "lion_pytorch" not in sys.modules


def _console_blocks() -> list[tuple[list[str], list[str]]]:
    """``(argv, printed lines)`` of each ```console block that runs ``optreg``."""
    blocks = []
    text = "\n".join(page.read_text(encoding="utf-8") for page in doc_pages())
    for m in re.finditer(r"^```console\n(.*?)^```", text, re.S | re.M):
        lines = m.group(1).splitlines()
        command = []
        while lines:
            line = lines.pop(0)
            command.append(line.rstrip("\\").strip())
            if not line.endswith("\\"):
                break
        argv = " ".join(command).removeprefix("$ ").split()
        if argv[0] == "optreg":
            blocks.append((argv[1:], lines))
    return blocks


#: How far a CPU-dependent figure of the compare table may be from the README's: the
#: losses and accuracies come from float32 matmuls and bitsandbytes' CPU kernels, whose
#: rounding differs with the CPU's SIMD width (73.63% on one AMD EPYC, 73.73% on
#: another: one test sample of 1,024). Names, state bytes and the header are exact.
LOSS_REL_TOL = 0.01
ACCURACY_ABS_TOL = 1.0  # percentage points: 10 of the 1,024 test samples


def _row(line: str) -> list[str] | None:
    """The cells of a result row (``name loss accuracy% ms bytes``), else None."""
    cells = line.split()
    if len(cells) == 5 and re.fullmatch(r"[\d.]+", cells[1]) and cells[2].endswith("%"):
        return cells
    return None


def assert_same_table(printed: list[str], documented: list[str]) -> None:
    """Each line equal, but a row's loss and accuracy within the tolerances above and its
    ms/step (which varies with load) not compared."""
    assert len(printed) == len(documented), "\n".join(printed)
    for got, want in zip(printed, documented, strict=True):
        got_row, want_row = _row(got), _row(want)
        if got_row is None or want_row is None:
            assert " ".join(got.split()) == " ".join(want.split())
            continue
        name, loss, accuracy, _, state = want_row
        assert [got_row[0], got_row[4]] == [name, state], got
        assert float(got_row[1]) == pytest.approx(float(loss), rel=LOSS_REL_TOL), got
        got_accuracy = float(got_row[2].rstrip("%"))
        assert abs(got_accuracy - float(accuracy.rstrip("%"))) <= ACCURACY_ABS_TOL, got


def test_the_readme_compare_table_is_what_the_command_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fresh_registry: None
) -> None:
    import torch

    from optreg.cli import main

    [(argv, documented)] = [b for b in _console_blocks() if b[0][0] == "compare"]
    version = re.search(r"torch (\S+),", "\n".join(documented))
    assert version is not None
    if version.group(1) != torch.__version__:
        pytest.skip(f"the README's figures are for torch {version.group(1)}")
    if (
        "_8bit" in " ".join(argv)
        and not optreg.optimizers.status(optreg.optimizers["adamw_8bit"])[0]
    ):
        pytest.skip("needs bitsandbytes")
    out = argv.index("-o") + 1
    argv[out] = str(tmp_path / Path(argv[out]).name)
    assert main([*argv, "--no-progress"]) == 0
    printed = capsys.readouterr().out.replace(argv[out], "docs/compare.png").splitlines()
    assert_same_table(printed, documented)
    first = Path(argv[out]).read_bytes()
    assert main([*argv, "--no-progress"]) == 0
    assert Path(argv[out]).read_bytes() == first  # the same command, the same PNG


def test_the_table_comparison_fails_on_what_is_deterministic_or_far_off() -> None:
    documented = ["optimizer   final loss  accuracy  ms/step  state bytes",
                  "adamw_8bit      0.5941    73.63%    0.821       16,552"]  # fmt: skip
    assert_same_table([documented[0], "adamw_8bit 0.5943 73.73% 9.999 16,552"], documented)
    for bad in (
        "adamw_8bit 0.5941 73.63% 0.821 16,553",  # state bytes are exact
        "adamw 0.5941 73.63% 0.821 16,552",  # so are names
        "adamw_8bit 0.6100 73.63% 0.821 16,552",  # loss 2.7% off
        "adamw_8bit 0.5941 75.00% 0.821 16,552",  # accuracy 1.37 points off
    ):
        with pytest.raises(AssertionError):
            assert_same_table([documented[0], bad], documented)
    with pytest.raises(AssertionError):
        assert_same_table(
            ["optimizer final loss accuracy ms/step bytes", documented[1]], documented
        )
