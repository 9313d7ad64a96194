"""Helpers shared by several test modules."""

from __future__ import annotations

import io
import os
import re
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.fc = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 2, bias=False)
        self.scale = nn.Parameter(torch.ones(4))
        self.frozen = nn.Parameter(torch.ones(2, 2), requires_grad=False)


#: For tests of muon / muon_adamw: torch.optim.Muon arrived in torch 2.9.
HAS_MUON = hasattr(torch.optim, "Muon")
NO_MUON = f"torch {torch.__version__} has no torch.optim.Muon"
needs_muon = pytest.mark.skipif(not HAS_MUON, reason=NO_MUON)


def sgd(*lrs: float, default: float | None = None) -> torch.optim.SGD:
    """SGD over one scalar parameter per lr (one param group each)."""
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in lrs or (1.0,)]
    return torch.optim.SGD(groups, lr=groups[0]["lr"] if default is None else default)


def save_load(obj: Any) -> Any:
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


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


STEPS = ["--num-warmup-steps", "2", "--num-training-steps", "10"]


def plateau(optimizer: Any, **kwargs: Any) -> ReduceLROnPlateau:
    return ReduceLROnPlateau(optimizer, **kwargs)


def pickle_round_trip(obj: Any) -> Any:
    """``pickle.loads(pickle.dumps(obj))``; torch < 2.6 unpickles tensors through
    ``torch.load(weights_only=False)`` and says so with a FutureWarning, not ours."""
    import pickle
    import warnings

    blob = pickle.dumps(obj)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*weights_only")
        return pickle.loads(blob)


ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
#: The guides whose blocks need transformers, Lightning and Hydra (the integrations env).
INTEGRATIONS = DOCS / "guides" / "integrations"


def doc_pages() -> list[Path]:
    """The README and every Markdown page of ``docs/`` (the generated pages are not files)."""
    return [README, *sorted(DOCS.rglob("*.md"))]


def python_blocks(*, integrations: bool) -> list[tuple[str, int, str]]:
    """``(page, line, code)`` of the ```python blocks of the README and ``docs/``: those of
    the integration guides (run in the integrations env, against the real frameworks) or
    all others."""
    out = []
    for page in doc_pages():
        if page.is_relative_to(INTEGRATIONS) is not integrations:
            continue
        text = page.read_text(encoding="utf-8")
        name = str(page.relative_to(ROOT))
        out += [
            (name, text[: m.start()].count("\n") + 1, m.group(1))
            for m in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M)
        ]
    return out


def run_ranks(script: str, argv: Callable[[int, int], list[str]], world: int, what: str) -> None:
    """Start ``world`` processes of ``python script *argv(rank, port)`` (gloo on loopback
    at ``port``, one thread each) and wait; fail the test, with the output, if one fails
    or hangs. A launch that fails is tried once more on a fresh port: a loopback port
    taken between :func:`free_port` and the bind, or gloo's teardown racing a rank that
    exits first (``terminate called without an active exception``), happens on a loaded
    machine; a failure that repeats fails the test with both outputs."""
    import pytest

    first = _launch_ranks(script, argv, world, what)
    if first is None:
        return
    again = _launch_ranks(script, argv, world, what)
    if again is not None:
        pytest.fail(f"{again}\n\n(the first launch failed too:)\n{first}")


def _launch_ranks(
    script: str, argv: Callable[[int, int], list[str]], world: int, what: str
) -> str | None:
    """One launch of :func:`run_ranks`: None when every rank exited 0, else why not."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPTREG_", "MASTER_"))}
    env.update(GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    # a script in a subfolder of tests/ imports these helpers as pytest's run does
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(Path(__file__).parent), env.get("PYTHONPATH")])
    )
    port = free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, script, *argv(rank, port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(world)
    ]
    logs = []
    try:
        for p in procs:
            try:
                logs.append(p.communicate(timeout=300)[0])
            except subprocess.TimeoutExpired:
                # one rank failed or hung: the others wait in a collective forever
                for q in procs:
                    q.kill()
                return f"{what}: ranks timed out after 300 s; output:\n{p.communicate()[0]}"
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for rank, p in enumerate(procs):
        if p.returncode != 0:
            return f"{what}: rank {rank}/{world} failed:\n{logs[rank]}"
    return None


def free_port() -> int:
    """A TCP port free on the loopback interface now."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def join_gloo(rank: int, world: int, port: int) -> None:
    """In a worker of :func:`run_ranks`: join the gloo group on loopback. The timeout keeps
    a case failing on one rank from leaving the others in a collective forever."""
    import datetime

    import torch.distributed as dist

    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=120),
    )
