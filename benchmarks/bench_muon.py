"""muon_adamw's step vs torch.optim.Muon + torch.optim.AdamW assembled by hand.

A BERT-base-like stack (hidden 768, FFN 3072, LAYERS layers, a 30522 x 768 embedding and
the norms and biases) with fixed random gradients. In one process, alternately, REPS
times: one muon_adamw step, and one step of the two torch optimizers built by hand on
the same split. Prints the median time of each, the ratio (target <= 1.05x) and the
state bytes per parameter of each side after the first step.

    python benchmarks/bench_muon.py [--layers 2] [--reps 15]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

import optreg
from optreg.builtin.muon import route
from optreg.params import param_groups


class Bert(nn.Module):
    def __init__(self, layers: int) -> None:
        super().__init__()
        self.embeddings = nn.Embedding(30522, 768)
        self.layers = nn.ModuleList()
        for _ in range(layers):
            block = nn.ModuleDict(
                {
                    "query": nn.Linear(768, 768),
                    "key": nn.Linear(768, 768),
                    "value": nn.Linear(768, 768),
                    "output": nn.Linear(768, 768),
                    "norm1": nn.LayerNorm(768),
                    "intermediate": nn.Linear(768, 3072),
                    "ffn_out": nn.Linear(3072, 768),
                    "norm2": nn.LayerNorm(768),
                }
            )
            self.layers.append(block)
        self.classifier = nn.Linear(768, 2)


def _grads(model: nn.Module) -> None:
    gen = torch.Generator().manual_seed(0)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=gen) * 1e-3


def _state_bytes(opt: torch.optim.Optimizer) -> int:
    """Bytes of the state of the parameters in ``opt``'s groups (the sides share one dict)."""
    return sum(
        v.numel() * v.element_size()
        for g in opt.param_groups
        for p in g["params"]
        for v in opt.state[p].values()
        if isinstance(v, torch.Tensor) and v.ndim > 0
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--reps", type=int, default=15)
    args = parser.parse_args()
    torch.manual_seed(0)
    ours_model, hand_model = Bert(args.layers), Bert(args.layers)
    hand_model.load_state_dict(ours_model.state_dict())
    for m in (ours_model, hand_model):
        _grads(m)
    ours = optreg.get_optimizer("muon_adamw", ours_model, lr=0.02, adamw_lr=1e-3)
    routes = route(hand_model)
    named = list(hand_model.named_parameters())
    hand = [
        torch.optim.Muon(  # type: ignore[attr-defined]
            param_groups([(n, p) for n, p in named if routes[n] == "muon"], weight_decay=0.1),
            lr=0.02,
        ),
        torch.optim.AdamW(
            param_groups([(n, p) for n, p in named if routes[n] == "adamw"], weight_decay=0.01),
            lr=1e-3,
        ),
    ]
    times: dict[str, list[float]] = {"muon_adamw": [], "by hand": []}
    for _ in range(args.reps):
        start = time.perf_counter()
        ours.step()
        times["muon_adamw"].append(time.perf_counter() - start)
        start = time.perf_counter()
        for o in hand:
            o.step()
        times["by hand"].append(time.perf_counter() - start)
    a, b = (statistics.median(times[k]) for k in ("muon_adamw", "by hand"))
    n_muon = sum(p.numel() for n, p in named if routes[n] == "muon")
    n_adamw = sum(p.numel() for n, p in named if routes[n] == "adamw")
    print(f"parameters: {n_muon:,} to Muon, {n_adamw:,} to AdamW ({args.layers} layers)")
    print(f"muon_adamw step: {a * 1e3:.1f} ms   by hand: {b * 1e3:.1f} ms   ratio {a / b:.3f}x")
    muon_bytes = _state_bytes(ours.muon)  # type: ignore[attr-defined]
    adamw_bytes = _state_bytes(ours.adamw)  # type: ignore[attr-defined]
    print(
        f"state bytes per parameter: Muon {muon_bytes / n_muon:.1f}, AdamW "
        f"{adamw_bytes / n_adamw:.1f}, overall {(muon_bytes + adamw_bytes) / (n_muon + n_adamw):.2f}"
    )


if __name__ == "__main__":
    main()
