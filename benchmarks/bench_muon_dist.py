"""Distributed Muon under FSDP2: each rank's share of the Newton-Schulz work, bytes sent,
and step time against the redundant path (every rank orthogonalising every matrix).

The 6-layer transformer-shaped stack of ``bench_muon.py`` (width d) is sharded with
``fully_shard`` on 2 and 4 gloo ranks (one thread each, loopback). Each rank steps
muon_adamw with fixed gradients, interleaving REPS steps of the distributed path
(``ns_distributed="auto"``) with REPS of the redundant one (``ns_distributed=False``,
Newton-Schulz on the sharded DTensors, as before). Printed per world size: the matrices
and the share of the Newton-Schulz cost (rows * cols * min) each rank orthogonalised in
one step (goal: about 1/world, within one matrix), the bytes each rank sent per step, and
the median step time of each path (the slowest rank's) and their ratio.

    python benchmarks/bench_muon_dist.py [--worlds 2 4] [--width 256] [--layers 6] [--reps 7]
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
    models, opts = {}, {}
    for path, mode in (("distributed", "auto"), ("redundant", False)):
        model = _stack(d, layers)
        fully_shard(model, mesh=mesh)  # the stack has no forward: the root's parameters
        gen = torch.Generator().manual_seed(1)
        for p in model.parameters():
            full = torch.randn(p.shape, generator=gen) * 1e-3
            p.grad = torch.distributed.tensor.distribute_tensor(full, mesh, p.placements)
        models[path] = model
        opts[path] = optreg.get_optimizer("muon_adamw", model, lr=0.02, ns_distributed=mode)
    times: dict[str, list[float]] = {"distributed": [], "redundant": []}
    for _ in range(reps):
        for path, opt in opts.items():
            dist.barrier()
            start = time.perf_counter()
            opt.step()
            dist.barrier()
            times[path].append(time.perf_counter() - start)
    work = opts["distributed"].muon.work
    everyone: list[object] = [None] * world
    dist.all_gather_object(everyone, {"work": work, "times": times})
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
    parser.add_argument("--layers", type=int, default=6)
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
                f"{w['bytes_sent'] / 1e6:.2f} MB sent per step"
            )
        med = {
            path: statistics.median(
                max(r["times"][path][i] for r in ranks) for i in range(args.reps)
            )
            for path in ("distributed", "redundant")
        }
        print(
            f"  step (slowest rank, median): distributed {med['distributed'] * 1e3:.1f} ms, "
            f"redundant {med['redundant'] * 1e3:.1f} ms, ratio {med['distributed'] / med['redundant']:.3f}x"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        a = sys.argv[2:]
        worker(int(a[0]), int(a[1]), int(a[2]), Path(a[3]), int(a[4]), int(a[5]), int(a[6]))
    else:
        main()
