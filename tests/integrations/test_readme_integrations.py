"""The integration guides' blocks (docs/guides/integrations/) run as written, against the
real frameworks."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from helpers import python_blocks

BLOCKS = python_blocks(integrations=True)


def test_the_section_has_a_block_per_framework() -> None:
    code = "\n".join(block for _, _, block in BLOCKS)
    for framework in ("transformers", "lightning", "hydra"):
        assert f"import {framework}" in code or f"from {framework}" in code, framework


@pytest.mark.parametrize(("page", "line", "code"), BLOCKS, ids=[f"{p}:{n}" for p, n, _ in BLOCKS])
def test_block_runs(
    page: str,
    line: int,
    code: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fresh_registry: None,
) -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("lightning")
    pytest.importorskip("hydra")
    monkeypatch.chdir(tmp_path)  # the blocks write their output_dir
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the frameworks' own notes
        exec(compile(code, f"{page}:{line}", "exec"), {"__name__": f"doc_line{line}"})
