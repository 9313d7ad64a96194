"""muon_adamw's step vs torch.optim.Muon + torch.optim.AdamW assembled by hand.

A 6-layer transformer-shaped stack of width d (an embedding, per layer a fused QKV, an
output projection, a 4d MLP, two LayerNorms and their biases, a final norm and an output
head) with fixed random gradients, for d = 128, 256, 512. In one process, on one thread,
interleaved REPS times: one muon_adamw step (its default, ``ns_batch="auto"``: on the CPU
stacks of same-shape matrices of at most BATCHED_UP_TO values batched, a static rule this
benchmark is where the range comes from), one with ``ns_batch=False`` (torch's loop), one with ``ns_batch=True`` (every
stack batched), one step of Muon + AdamW built by hand with torch's defaults (AdamW's
for-loop kernel), and one of Muon + AdamW(fused=True) by hand. Prints the median of each
and the ratios; the targets (issue 26): <= 1.0x of the best hand-built pair at every d,
and <= 0.7x of the torch-default pair at d=128. It also prints the rule, which stacks
``"auto"`` batched, and whether the batched and the default runs' parameters equal the looped run's
exactly after the timed steps (they do where the BLAS computes a batched and a single
bf16 matmul alike).

    python benchmarks/bench_muon.py [--widths 128 256 512] [--layers 6] [--reps 21]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

import optreg
from optreg.builtin import muon_batched
from optreg.builtin.muon import route
from optreg.params import param_groups


class Stack(nn.Module):
    def __init__(self, d: int, layers: int, vocab: int = 1024) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.layers = nn.ModuleList(
            nn.ModuleDict(
                {
                    "qkv": nn.Linear(d, 3 * d),
                    "out": nn.Linear(d, d),
                    "norm1": nn.LayerNorm(d),
                    "fc1": nn.Linear(d, 4 * d),
                    "fc2": nn.Linear(4 * d, d),
                    "norm2": nn.LayerNorm(d),
                }
            )
            for _ in range(layers)
        )
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)


def _grads(model: nn.Module) -> None:
    gen = torch.Generator().manual_seed(0)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=gen) * 1e-3


def _by_hand(model: nn.Module, fused: bool | None) -> list[torch.optim.Optimizer]:
    routes = route(model)
    named = list(model.named_parameters())
    return [
        torch.optim.Muon(  # type: ignore[attr-defined]
            param_groups([(n, p) for n, p in named if routes[n] == "muon"], weight_decay=0.1),
            lr=0.02,
            weight_decay=0.1,
        ),
        torch.optim.AdamW(
            param_groups([(n, p) for n, p in named if routes[n] == "adamw"], weight_decay=0.01),
            lr=1e-3,
            weight_decay=0.01,
            fused=fused,
        ),
    ]


def _time(step: Callable[[], None]) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def run(d: int, layers: int, reps: int) -> dict[str, float]:
    """Median step time of each variant at width ``d``."""
    names = ("muon_adamw", "looped", "batched", "by hand", "by hand, fused AdamW")
    models = {k: Stack(d, layers) for k in names}
    first = models["muon_adamw"].state_dict()
    for m in models.values():
        m.load_state_dict(first)
        _grads(m)
    ours = optreg.get_optimizer("muon_adamw", models["muon_adamw"], lr=0.02, adamw_lr=1e-3)
    looped, batched = (
        optreg.get_optimizer("muon_adamw", models[k], lr=0.02, adamw_lr=1e-3, ns_batch=batch)
        for k, batch in (("looped", False), ("batched", True))
    )
    default = _by_hand(models["by hand"], fused=None)
    fused = _by_hand(models["by hand, fused AdamW"], fused=True)
    steps: dict[str, Callable[[], None]] = {
        "muon_adamw": ours.step,
        "looped": looped.step,
        "batched": batched.step,
        "by hand": lambda: [o.step() for o in default] and None,
        "by hand, fused AdamW": lambda: [o.step() for o in fused] and None,
    }
    for step in steps.values():  # warm up: state allocated, kernels loaded
        step()
    times: dict[str, list[float]] = {k: [] for k in steps}
    order = list(steps)
    for i in range(reps):
        k0 = i % len(order)
        for k in order[k0:] + order[:k0]:  # rotate the order: no variant always first
            times[k].append(_time(steps[k]))
    same = {
        k: all(
            torch.equal(a, b)
            for a, b in zip(models[k].parameters(), models["looped"].parameters(), strict=True)
        )
        for k in ("batched", "muon_adamw")
    }
    routes = route(models["muon_adamw"])
    shapes = sorted(
        {tuple(p.shape) for n, p in models["muon_adamw"].named_parameters() if routes[n] == "muon"}
    )
    chosen = ", ".join(
        f"{'x'.join(map(str, shape))}: "
        f"{'batched' if ours.muon._batches(torch.device('cpu'), shape) else 'looped'}"
        for shape in shapes
    )
    print(
        f"d={d}: {sum(r == 'muon' for r in routes.values())} Muon tensors, "
        f"{sum(r == 'adamw' for r in routes.values())} AdamW-side tensors; equal to the loop "
        f"exactly: batched {same['batched']}, default {same['muon_adamw']}; "
        f'"auto" (batched up to {muon_batched.BATCHED_UP_TO:,} values a matrix): {chosen}'
    )
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--reps", type=int, default=21)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, 1 thread, {args.layers} layers, median of {args.reps}")
    rows = [(d, run(d, args.layers, args.reps)) for d in args.widths]
    print(
        f"{'d':>5} {'muon_adamw':>11} {'looped':>10} {'batched':>10} {'by hand':>10} "
        f"{'hand+fused':>11} {'vs default':>11} {'vs best':>8} {'looped vs best':>15} "
        f"{'batched vs best':>16}"
    )
    for d, t in rows:
        ours, loop, batch = t["muon_adamw"], t["looped"], t["batched"]
        default, best = t["by hand"], min(t["by hand"], t["by hand, fused AdamW"])
        print(
            f"{d:>5} {ours * 1e3:>9.2f}ms {loop * 1e3:>8.2f}ms {batch * 1e3:>8.2f}ms "
            f"{default * 1e3:>8.2f}ms {t['by hand, fused AdamW'] * 1e3:>9.2f}ms "
            f"{ours / default:>10.3f}x {ours / best:>7.3f}x {loop / best:>14.3f}x "
            f"{batch / best:>15.3f}x"
        )


if __name__ == "__main__":
    main()
