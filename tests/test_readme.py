"""Every ```python block of the README runs as written (each in a fresh namespace).

The blocks of its Integrations section need transformers, Lightning and Hydra: they run in
the integrations env (tests/integrations/test_readme_integrations.py).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from helpers import README, readme_python_blocks

import optreg

BLOCKS = readme_python_blocks(integrations=False)  # those of "Integrations": tests/integrations


def test_the_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize(("line", "code"), BLOCKS, ids=[f"line{n}" for n, _ in BLOCKS])
def test_block_runs(
    line: int, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: None
) -> None:
    if "_8bit" in code and not optreg.optimizers.status(optreg.optimizers["adamw_8bit"])[0]:
        pytest.skip("needs bitsandbytes (pip install optreg[bnb])")
    if "muon" in code and not optreg.optimizers.status(optreg.optimizers["muon"])[0]:
        pytest.skip("needs torch.optim.Muon (torch >= 2.9)")
    monkeypatch.chdir(tmp_path)  # a block may write files (ckpt.pt)
    namespace: dict[str, object] = {"__name__": f"readme_line{line}"}
    exec(compile(code, f"README.md:{line}", "exec"), namespace)
    hook = namespace.get("optreg_add_optimizers")
    if callable(hook):  # a plugin module: its hook registers what it says, lazily
        from optreg._registry import Registry
        from optreg.hookspecs import PluginRegistry

        registry = Registry("optimizer")
        hook(PluginRegistry(registry, "mypkg", None, "mypkg:readme"))
        entry = registry.resolve("mypkg:lion_pt")
        assert entry.target == "lion_pytorch:Lion" and entry.extra == "lion"
        assert "lion_pytorch" not in sys.modules


def _console_blocks() -> list[tuple[list[str], list[str]]]:
    """``(argv, printed lines)`` of each ```console block that runs ``optreg``."""
    blocks = []
    for m in re.finditer(r"^```console\n(.*?)^```", README.read_text(), re.S | re.M):
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


def _mask_timing(lines: list[str]) -> list[str]:
    """The compare table with its ms/step column (which varies with load) blanked."""
    out = []
    for line in lines:
        cells = line.split()
        if len(cells) == 5 and re.fullmatch(r"[\d.]+", cells[3]):
            cells[3] = "<ms>"
        out.append(" ".join(cells))
    return out


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
    assert _mask_timing(printed) == _mask_timing(documented)
    first = Path(argv[out]).read_bytes()
    assert main([*argv, "--no-progress"]) == 0
    assert Path(argv[out]).read_bytes() == first  # the same command, the same PNG
