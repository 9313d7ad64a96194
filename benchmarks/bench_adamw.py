"""Step time of optreg's AdamW names against torch.optim.AdamW, side by side (CPU).

Two comparisons, each on its own copy of BERT-like parameters (same gradients):

* ``adamw_hf`` (optreg's classic transformers AdamW, multi-tensor) vs
  ``torch.optim.AdamW(foreach=True)`` with the same hyperparameters
  (target: ratio <= 1.2);
* ``optreg.get_optimizer("adamw", params)`` (fast by default: fused when supported) vs
  ``torch.optim.AdamW(params)`` with torch's own defaults (target: ratio <= 0.35).

All four optimizers step in an interleaved order (rotated every repetition), so all
see the same machine noise; the figures are medians over the repetitions.

    python benchmarks/bench_adamw.py [--layers 2] [--steps 15]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

import optreg


def bert_shapes(layers: int) -> list[tuple[int, ...]]:
    """Parameter shapes of BERT-base with ``layers`` encoder layers."""
    h, inter = 768, 3072
    shapes: list[tuple[int, ...]] = [(30522, h), (512, h), (2, h), (h,), (h,)]
    for _ in range(layers):
        shapes += [(h, h), (h,)] * 4 + [(h,), (h,)]
        shapes += [(inter, h), (inter,), (h, inter), (h,), (h,), (h,)]
    shapes += [(h, h), (h,)]
    return shapes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layers", type=int, default=2, help="encoder layers (BERT-base: 12)")
    parser.add_argument("--steps", type=int, default=15, help="timed repetitions of each")
    args = parser.parse_args()

    shapes = bert_shapes(args.layers)
    gen = torch.Generator().manual_seed(0)
    init = [torch.randn(s, generator=gen) * 0.02 for s in shapes]
    grads = [torch.randn(s, generator=gen) * 1e-3 for s in shapes]
    hyper = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-6, "weight_decay": 0.01}

    def fresh() -> list[torch.Tensor]:
        params = [torch.nn.Parameter(t.clone()) for t in init]
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        return params

    builders: dict[str, Callable[[], torch.optim.Optimizer]] = {
        "adamw_hf": lambda: optreg.get_optimizer("adamw_hf", fresh(), **hyper),
        "torch AdamW(foreach=True)": lambda: torch.optim.AdamW(fresh(), foreach=True, **hyper),
        'get_optimizer("adamw")': lambda: optreg.get_optimizer("adamw", fresh()),
        "torch AdamW() defaults": lambda: torch.optim.AdamW(fresh()),
    }
    opts = {name: build() for name, build in builders.items()}
    for opt in opts.values():  # allocate state outside the timing
        opt.step()
    times: dict[str, list[float]] = {name: [] for name in opts}
    names = list(opts)
    for rep in range(args.steps):
        k = rep % len(names)
        for name in names[k:] + names[:k]:
            start = time.perf_counter()
            opts[name].step()
            times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(t) for name, t in times.items()}

    numel = sum(torch.Size(s).numel() for s in shapes)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; BERT-like shapes, "
        f"{args.layers} layers: {len(shapes)} tensors, {numel / 1e6:.1f}M parameters; "
        f"median of {args.steps} interleaved steps"
    )
    fused = opts['get_optimizer("adamw")'].param_groups[0]["fused"]
    for ours, theirs, target, sense in (
        ("adamw_hf", "torch AdamW(foreach=True)", 1.2, "<="),
        ('get_optimizer("adamw")', "torch AdamW() defaults", 0.35, "<="),
    ):
        ratio = med[ours] / med[theirs]
        print(
            f"{ours:24s} {med[ours] * 1000:8.1f} ms  vs  {theirs:26s} {med[theirs] * 1000:8.1f} ms"
            f"  ratio {ratio:.2f}x (target {sense} {target})  {'PASS' if ratio <= target else 'FAIL'}"
        )
    print(f'get_optimizer("adamw") chose fused={fused}')


if __name__ == "__main__":
    main()
