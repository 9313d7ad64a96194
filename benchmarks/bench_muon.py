"""muon_adamw's step vs torch.optim.Muon + torch.optim.AdamW assembled by hand.

A 6-layer transformer-shaped stack of width d (an embedding, per layer a fused QKV, an
output projection, a 4d MLP, two LayerNorms and their biases, a final norm and an output
head) with fixed random gradients, for d = 128, 256, 512. In one process, on one thread,
interleaved REPS times: one muon_adamw step, one step of Muon + AdamW built by hand with
torch's defaults (AdamW's for-loop kernel), and one of Muon + AdamW(fused=True) by hand.
Prints the median of each and the ratios; the targets (issue 26): muon_adamw <= 1.0x of
the best hand-built pair at every d, and <= 0.7x of the torch-default pair at d=128.

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
    models = {k: Stack(d, layers) for k in ("muon_adamw", "by hand", "by hand, fused AdamW")}
    first = models["muon_adamw"].state_dict()
    for m in models.values():
        m.load_state_dict(first)
        _grads(m)
    ours = optreg.get_optimizer("muon_adamw", models["muon_adamw"], lr=0.02, adamw_lr=1e-3)
    default = _by_hand(models["by hand"], fused=None)
    fused = _by_hand(models["by hand, fused AdamW"], fused=True)
    steps: dict[str, Callable[[], None]] = {
        "muon_adamw": ours.step,
        "by hand": lambda: [o.step() for o in default] and None,
        "by hand, fused AdamW": lambda: [o.step() for o in fused] and None,
    }
    for step in steps.values():  # warm up: state allocated, kernels loaded
        step()
    times: dict[str, list[float]] = {k: [] for k in steps}
    names = list(steps)
    for i in range(reps):
        for k in names[i % 3 :] + names[: i % 3]:  # rotate the order: no variant always first
            times[k].append(_time(steps[k]))
    routes = route(models["muon_adamw"])
    print(
        f"d={d}: {sum(r == 'muon' for r in routes.values())} Muon tensors, "
        f"{sum(r == 'adamw' for r in routes.values())} AdamW-side tensors"
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
    print(
        f"{'d':>5} {'muon_adamw':>11} {'by hand':>9} {'hand+fused':>11} {'vs default':>11} {'vs best':>8}"
    )
    for d in args.widths:
        t = run(d, args.layers, args.reps)
        ours, default, fused = t["muon_adamw"], t["by hand"], t["by hand, fused AdamW"]
        print(
            f"{d:>5} {ours * 1e3:>9.2f}ms {default * 1e3:>7.2f}ms {fused * 1e3:>9.2f}ms "
            f"{ours / default:>10.3f}x {ours / min(default, fused):>7.3f}x"
        )


if __name__ == "__main__":
    main()
