"""Every ```python block of the README runs as written (each in a fresh namespace)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import optreg

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = [
    (README.read_text()[: m.start()].count("\n") + 1, m.group(1))
    for m in re.finditer(r"^```python\n(.*?)^```", README.read_text(), re.S | re.M)
]


def test_the_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize(("line", "code"), BLOCKS, ids=[f"line{n}" for n, _ in BLOCKS])
def test_block_runs(
    line: int, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: None
) -> None:
    if "_8bit" in code and not optreg.optimizers.status(optreg.optimizers["adamw_8bit"])[0]:
        pytest.skip("needs bitsandbytes (pip install optreg[bnb])")
    monkeypatch.chdir(tmp_path)  # a block may write files (ckpt.pt)
    exec(compile(code, f"README.md:{line}", "exec"), {"__name__": f"readme_line{line}"})
