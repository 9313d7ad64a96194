"""Measured capabilities across processes: ``ddp`` and ``fsdp2`` on two gloo ranks.

One launch of `WORLD` worker processes checks every name given, one after the
other (``python -m optreg.testing._distributed`` is the worker). Per name and per
wrapper, each rank steps a small two-layer model `STEPS` times on its half of each
batch and, beside it, a one-process copy of the model given the same reduced gradients
(the full tensor of each sharded gradient): the verdict compares the two within
``rtol=1e-5, atol=1e-6``, or within 5% of the parameters' change over the steps (an
update computed in bfloat16), and says the figure ("max diff 0 (exact)" where equal).

* ``ddp``: the model wrapped in ``DistributedDataParallel``; the ranks' parameters must
  also agree with each other.
* ``fsdp2``: both layers and the model under ``fully_shard`` (parameters, gradients and
  state are DTensors sharded by rows, one shard uneven); then ``get_state_dict`` into a
  fresh sharded model and optimizer through ``set_state_dict``, and one more step of each
  must give the same parameters bit for bit.

Rank 0 appends one JSON line per name as soon as it is measured. A name that makes a
rank hang or die is failed with the ranks' last output, and the launcher starts fresh
workers on the names after it: one bad plugin never costs the others their verdict.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optreg.builtin.capabilities import Verdict
from optreg.testing._common import draws

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["DISTRIBUTED", "WORLD", "measure_distributed"]

#: The capabilities this module measures.
DISTRIBUTED = ("ddp", "fsdp2")
WORLD = 2
STEPS = 5
BATCH = 8
RTOL, ATOL = 1e-5, 1e-6
#: or within this share of the largest change of a parameter over the steps: an update
#: computed in bfloat16 (Newton-Schulz in torch's Muon) amplifies the order of a sharded
#: matrix product's reduction to a few percent of the update (torch's Muon: 1.3% here); a
#: step that loses or repeats a shard is off by the whole update
UPDATE_SHARE = 5e-2
#: How long the workers may take per name before they count as hung.
SECONDS_PER_NAME = 60


@dataclass(frozen=True)
class _Rank:
    """Where a worker runs (from its arguments): its rank, the ranks, the device, the backend."""

    rank: int
    world: int
    device: str
    backend: str


def measure_distributed(
    names: list[str], *, setup: str | None = None, device: str = "cpu"
) -> dict[str, dict[str, Verdict]]:
    """``{name: {"ddp": Verdict, "fsdp2": Verdict}}`` for optimizer names the kit can
    step (those the kit's problem fits: see [optreg.testing.needs][]), measured by one launch of
    `WORLD` gloo ranks. ``setup`` (``"module"`` or ``"module:function"``) is what
    the workers import, and call, first: a name registered at runtime exists only in the
    process that registered it. ``device="cuda"``: the same checks on NCCL, one rank per
    GPU up to `WORLD` (one GPU: one rank, which still steps DTensors).
    """

    if not names:
        return {}
    why = _unsupported(device)
    if why:
        return {n: {c: Verdict("n/a", why) for c in DISTRIBUTED} for n in names}
    out: dict[str, dict[str, Verdict]] = {}
    todo = list(names)
    with tempfile.TemporaryDirectory(prefix="optreg-dist-") as tmp:
        while todo:
            results = Path(tmp) / f"results-{len(out)}.jsonl"
            logs = _launch(todo, results, setup, device)
            done = _read(results)
            out.update(done)
            todo = [n for n in todo if n not in done]
            if todo and logs is not None:  # the first name left hung or killed a rank
                why = f"the ranks hung or died on it: {logs}"
                out[todo.pop(0)] = {c: Verdict("fail", why) for c in DISTRIBUTED}
            elif todo:  # pragma: no cover - the workers exited 0 without measuring
                raise RuntimeError(f"the workers left {todo} unmeasured")
    return out


def _unsupported(device: str) -> str | None:
    import torch
    import torch.distributed as dist

    if not dist.is_available():
        return "torch.distributed is not available"
    if device == "cpu":
        return None if dist.is_gloo_available() else "torch.distributed has no gloo backend"
    if device != "cuda" or not torch.cuda.is_available() or not dist.is_nccl_available():
        return f"no {device} device with NCCL here"
    return None


def _world(device: str) -> int:
    import torch

    return WORLD if device == "cpu" else min(WORLD, torch.cuda.device_count())


def _launch(names: list[str], results: Path, setup: str | None, device: str) -> str | None:
    """Run the workers over ``names``; None when every rank exited 0, else the last
    lines of their output."""
    world = _world(device)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MASTER_")}
    env.update(GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    argv = ["--port", str(port), "--out", str(results), "--names", json.dumps(names)]
    argv += ["--device", device]
    if setup:
        argv += ["--setup", setup]
    logs = [results.with_suffix(f".rank{r}.log") for r in range(world)]
    procs = []
    for r, log in enumerate(logs):
        with log.open("w") as sink:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "optreg.testing._distributed", "--rank", str(r), *argv],
                    env=env,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
            )
    deadline = time.monotonic() + 30 + SECONDS_PER_NAME * len(names)
    try:
        # a rank that dies leaves the others in a collective: stop them at once
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            if any(p.returncode not in (None, 0) for p in procs):
                break
            time.sleep(0.05)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    if all(p.returncode == 0 for p in procs):
        return None
    lines = [
        line for log in logs for line in log.read_text(errors="replace").strip().splitlines()[-2:]
    ]
    text = " | ".join(lines)
    if len(text) > 300:  # the end, from a line's start where one begins there
        tail = text[-300:]
        text = "... " + (tail.partition(" | ")[2] or tail)
    return text or f"exit statuses {[p.returncode for p in procs]}"


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _read(results: Path) -> dict[str, dict[str, Verdict]]:
    if not results.exists():
        return {}
    out = {}
    for line in results.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            out[item["name"]] = {c: Verdict(*item[c]) for c in DISTRIBUTED}
    return out


# --------------------------------------------------------------------------
# the worker
# --------------------------------------------------------------------------
def _model(matrices: bool, here: _Rank) -> nn.Sequential:
    import torch
    from torch import nn

    torch.manual_seed(0)
    bias = not matrices
    layers = nn.Sequential(nn.Linear(4, 6, bias=bias), nn.Tanh(), nn.Linear(6, 3, bias=bias))
    return layers.to(here.device)


def _fsdp2(matrices: bool, here: _Rank) -> nn.Module:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    model = _model(matrices, here)
    mesh = init_device_mesh(here.device, (here.world,))
    fully_shard(model[0], mesh=mesh)
    fully_shard(model[2], mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def _full(t: torch.Tensor) -> torch.Tensor:
    return t.full_tensor() if hasattr(t, "full_tensor") else t  # type: ignore[no-any-return]


def _loss(model: nn.Module, step: int, here: _Rank) -> torch.Tensor:
    import torch

    gen = torch.Generator().manual_seed(100 + step)
    x, y = torch.randn(BATCH, 4, generator=gen), torch.randn(BATCH, 3, generator=gen)
    x, y = x.to(here.device), y.to(here.device)
    half, rank = BATCH // here.world, here.rank
    x, y = x[rank * half : (rank + 1) * half], y[rank * half : (rank + 1) * half]
    return torch.nn.functional.mse_loss(model(x), y)


def _shadowed(
    model: nn.Module, plain: nn.Module, build: Any, here: _Rank
) -> tuple[Any, tuple[float, bool, float]]:
    """Step ``model`` and, with the same reduced gradients, ``plain``; how far apart they
    end after `STEPS` steps."""

    opt, ref = build(list(model.parameters())), build(list(plain.parameters()))
    start = [q.detach().clone() for q in plain.parameters()]
    for step in range(STEPS):
        opt.zero_grad()
        _loss(model, step, here).backward()  # type: ignore[no-untyped-call]
        for p, q in zip(model.parameters(), plain.parameters(), strict=True):
            q.grad = _full(p.grad).detach().clone()  # type: ignore[arg-type]
        for o in (opt, ref):  # the same random numbers for both (Kron's, say)
            with draws(1000 + step):
                o.step()
    moved = max(
        float((q.detach() - s).abs().max()) for q, s in zip(plain.parameters(), start, strict=True)
    )
    diff, close = _compare(model, plain)
    return opt, (diff, close, moved)


def _compare(model: nn.Module, plain: nn.Module) -> tuple[float, bool]:
    """The largest difference of the (full) parameters, and whether all are close."""
    import torch

    diff, close = 0.0, True
    for p, q in zip(model.parameters(), plain.parameters(), strict=True):
        a, b = _full(p.detach()), _full(q.detach())
        close = close and torch.allclose(a, b, rtol=RTOL, atol=ATOL)
        diff = max(diff, float((a.double() - b.double()).abs().max()))
    return diff, close


def _figure(diff: float) -> str:
    return "max diff 0 (exact)" if diff == 0 else f"max diff {diff:.3g}"


def _ddp(build: Any, matrices: bool, here: _Rank) -> Verdict:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    model, plain = DistributedDataParallel(_model(matrices, here)), _model(matrices, here)
    _, diff = _shadowed(model, plain, build, here)
    mine = [p.detach() for p in model.parameters()]
    theirs: list[Any] = [None] * here.world
    dist.all_gather_object(theirs, mine)
    if any(not all(a.equal(b) for a, b in zip(mine, t, strict=True)) for t in theirs):
        return Verdict("fail", "the ranks' parameters disagree after the steps")
    return _verdict(diff, "under DistributedDataParallel", here)


def _fsdp2_check(build: Any, matrices: bool, here: _Rank) -> Verdict:
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    model, plain = _fsdp2(matrices, here), _model(matrices, here)
    opt, diff = _shadowed(model, plain, build, here)
    verdict = _verdict(diff, "sharded by fully_shard", here)
    if verdict.status != "pass":
        return verdict
    model_sd, optim_sd = copy.deepcopy(get_state_dict(model, opt))
    again = _fsdp2(matrices, here)
    opt2 = build(list(again.parameters()))
    set_state_dict(again, opt2, model_state_dict=model_sd, optim_state_dict=optim_sd)
    for m, o in ((model, opt), (again, opt2)):
        o.zero_grad()
        _loss(m, STEPS, here).backward()  # type: ignore[no-untyped-call]
        with draws(1000 + STEPS):
            o.step()
    after, _ = _compare(model, again)
    if after != 0:
        return Verdict(
            "fail",
            f"get_state_dict -> set_state_dict into a fresh model and optimizer, then a "
            f"step: the parameters differ by {after:.3g}",
        )
    return Verdict("pass", verdict.detail + "; get_state_dict -> set_state_dict resumes exactly")


def _verdict(found: tuple[float, bool, float], how: str, here: _Rank) -> Verdict:
    diff, close, moved = found
    ranks, backend = here.world, here.backend
    text = f"{ranks} {backend} rank{'s' if ranks != 1 else ''} {how} vs one process, {STEPS} steps"
    if close:
        return Verdict("pass", f"{text}: {_figure(diff)}")
    if diff <= UPDATE_SHARE * moved:
        return Verdict("pass", f"{text}: max diff {diff:.3g}, {diff / moved:.1%} of the change")
    return Verdict(
        "fail",
        f"{text}: the parameters differ by {diff:.3g} (rtol {RTOL}, atol {ATOL}, or "
        f"{UPDATE_SHARE:.0%} of their change, {moved:.3g})",
    )


def _one(name: str, here: _Rank) -> dict[str, Verdict]:
    import torch.distributed as dist

    from optreg.testing._common import fsdp2_missing, plan, raised, seeded

    why, factory, kwargs, matrices = plan(name)
    if why:
        return {c: Verdict("n/a", why) for c in DISTRIBUTED}

    def build(params: list[Any]) -> Any:
        with seeded():
            return factory(params, **kwargs)

    out = {}
    for cap, check in (("ddp", _ddp), ("fsdp2", _fsdp2_check)):
        missing = fsdp2_missing() if cap == "fsdp2" else None  # the same torch on every rank
        if missing:
            out[cap] = Verdict("n/a", missing)
            continue
        try:
            mine = check(build, matrices, here)
        except Exception as e:
            mine = Verdict("fail", raised(e))
        every: list[Any] = [None] * here.world
        dist.all_gather_object(every, mine)
        out[cap] = next((v for v in every if v.status != "pass"), mine)
    return out


def _worker(argv: list[str]) -> int:
    import argparse
    import datetime
    import importlib

    import torch
    import torch.distributed as dist

    parser = argparse.ArgumentParser(prog="python -m optreg.testing._distributed")
    parser.add_argument("--rank", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--names", type=json.loads, required=True)
    parser.add_argument("--setup")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cuda = args.device == "cuda"
    here = _Rank(args.rank, _world(args.device), args.device, "nccl" if cuda else "gloo")
    if cuda:
        torch.cuda.set_device(args.rank)
    if args.setup:
        module, _, function = args.setup.partition(":")
        loaded = importlib.import_module(module)
        if function:
            getattr(loaded, function)()
    dist.init_process_group(
        here.backend,
        init_method=f"tcp://127.0.0.1:{args.port}",
        rank=args.rank,
        world_size=here.world,
        timeout=datetime.timedelta(seconds=SECONDS_PER_NAME),
    )
    try:
        for name in args.names:
            try:
                verdicts = _one(name, here)
            except Exception:
                print(f"{name}: {traceback.format_exc()}", flush=True)
                raise
            if args.rank == 0:
                line = {"name": name, **{c: [v.status, v.detail] for c, v in verdicts.items()}}
                with args.out.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(line) + "\n")
            dist.barrier()
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
