"""Distributed Muon and element-wise AdamW under FSDP2 against one process.

The transformer-shaped stack of ``bench_muon.py`` (width d, 4 layers by default) is
sharded with ``fully_shard`` on 2 and 4 gloo ranks (one thread each, loopback), with
fixed gradients. Interleaved REPS times, each rank steps:

* muon_adamw distributed (``ns_distributed="auto"``: by plan, bucketed collectives),
  and redundant (``ns_distributed=False``: Newton-Schulz on the sharded DTensors);
* ``adamw`` (FSDP2 shards stepped as local tensors, fused) and the same fused AdamW
  stepping the DTensors (the path before local stepping);

and rank 0 alone steps one process's muon_adamw and adamw over the whole stack while the
other ranks wait. Printed per world size: each rank's matrices, share of the
Newton-Schulz cost and bytes sent; collective launches per step and plan builds for the
run; the median step of each path (the slowest rank's) and the ratios (goals:
muon_adamw distributed <= 0.75x one process on 2 ranks, adamw <= 0.6x one process).

    python benchmarks/bench_muon_dist.py [--worlds 2 4] [--width 256] [--layers 4] [--reps 7]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def _stack(d: int, layers: int) -> torch.nn.Module:
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_muon import Stack

    torch.manual_seed(0)
    return Stack(d, layers)


def worker(rank: int, world: int, port: int, out: Path, d: int, layers: int, reps: int) -> None:
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    import optreg

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    mesh = init_device_mesh("cpu", (world,))
    steps: dict[str, object] = {}
    for path, name, kwargs in (
        ("muon_adamw distributed", "muon_adamw", {"lr": 0.02, "ns_distributed": "auto"}),
        ("muon_adamw redundant", "muon_adamw", {"lr": 0.02, "ns_distributed": False}),
        ("adamw local shards", "adamw", {"lr": 1e-3}),
        ("adamw DTensor", "adamw", {"lr": 1e-3}),
        ("muon_adamw one process", "muon_adamw", {"lr": 0.02}),
        ("adamw one process", "adamw", {"lr": 1e-3}),
    ):
        model = _stack(d, layers)
        if "one process" not in path:
            fully_shard(model, mesh=mesh)  # the stack has no forward: the root's parameters
        gen = torch.Generator().manual_seed(1)
        for p in model.parameters():
            full = torch.randn(p.shape, generator=gen) * 1e-3
            p.grad = (
                full
                if "one process" in path
                else torch.distributed.tensor.distribute_tensor(full, mesh, p.placements)
            )
        opt = optreg.get_optimizer(name, model, **kwargs)
        if path == "adamw DTensor":  # the same fused kernel on the DTensors
            opt._optimizer_step_pre_hooks.clear()
            opt._optimizer_step_post_hooks.clear()
        steps[path] = opt
    times: dict[str, list[float]] = {path: [] for path in steps}
    for i in range(reps + 1):
        for path, opt in steps.items():
            alone = "one process" in path
            dist.barrier()
            start = time.perf_counter()
            if rank == 0 or not alone:
                opt.step()  # type: ignore[attr-defined]
            took = time.perf_counter() - start
            dist.barrier()
            if i:  # the first round warms up (state allocated, plans built)
                times[path].append(took)
    muon = steps["muon_adamw distributed"].muon  # type: ignore[attr-defined]
    everyone: list[object] = [None] * world
    dist.all_gather_object(everyone, {"work": muon.work, "plans": muon.plans_built, "times": times})
    if rank == 0:
        torch.save(everyone, out)
    dist.destroy_process_group()


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    model = _stack(args.width, args.layers)
    from optreg.builtin.muon import route
    from optreg.builtin.muon_dist import ns_cost

    muon = [p for n, p in model.named_parameters() if route(model)[n] == "muon"]
    total = sum(ns_cost(p.shape) for p in muon)
    largest = max(ns_cost(p.shape) for p in muon)
    print(
        f"{args.layers}-layer stack, d={args.width}: {len(muon)} Muon matrices, FSDP2 on gloo, "
        f"1 thread per rank, {args.reps} steps of each path interleaved, torch {torch.__version__}"
    )
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "GLOO_SOCKET_IFNAME": "lo",
        "PYTHONWARNINGS": "ignore",
    }
    for world in args.worlds:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "result.pt"
            port = _port()
            argv = [str(port), str(out), str(args.width), str(args.layers), str(args.reps)]
            procs = [
                subprocess.Popen(
                    [sys.executable, __file__, "--worker", str(r), str(world), *argv], env=env
                )
                for r in range(world)
            ]
            if any(p.wait() for p in procs):
                raise SystemExit(f"a rank failed on {world} ranks")
            ranks = torch.load(out, weights_only=False)
        print(
            f"\n{world} ranks (share goal: 1/{world} = {1 / world:.3f}, within one matrix = {largest / total:.3f})"
        )
        for r, result in enumerate(ranks):
            w = result["work"]
            print(
                f"  rank {r}: {w['matrices']:2d} matrices, {w['cost'] / total:.3f} of the cost, "
                f"{w['bytes_sent'] / 1e6:.2f} MB sent, {w['collectives']} collective launches "
                f"per step ({len(muon)} matrices); plans built in the run: {result['plans']}"
            )
        med = {
            path: statistics.median(
                max(r["times"][path][i] for r in ranks) for i in range(args.reps)
            )
            for path in ranks[0]["times"]
        }
        for path, t in med.items():
            print(f"  {path:<24} {t * 1e3:8.2f} ms")
        one_m, one_a = med["muon_adamw one process"], med["adamw one process"]
        print(
            f"  muon_adamw distributed / one process {med['muon_adamw distributed'] / one_m:.3f}x, "
            f"redundant / one process {med['muon_adamw redundant'] / one_m:.3f}x, "
            f"distributed / redundant "
            f"{med['muon_adamw distributed'] / med['muon_adamw redundant']:.3f}x\n"
            f"  adamw local shards / one process {med['adamw local shards'] / one_a:.3f}x, "
            f"DTensor / one process {med['adamw DTensor'] / one_a:.3f}x, "
            f"local / DTensor {med['adamw local shards'] / med['adamw DTensor']:.3f}x"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        a = sys.argv[2:]
        worker(int(a[0]), int(a[1]), int(a[2]), Path(a[3]), int(a[4]), int(a[5]), int(a[6]))
    else:
        main()
