"""On a CUDA device: step time and optimizer-state memory of optreg's names, side by side.

A transformer-shaped stack (``bench_muon.Stack``; d=1024, 8 layers, a vocabulary of
32768: 168M parameters) on the GPU with fixed random gradients. Each variant's state is
allocated by one step, its device memory measured (``torch.cuda.memory_allocated`` before
and after: paged state lives in unified memory and counts as 0 here), then REPS steps of
every variant are timed interleaved, with CUDA events. Prints the medians and the ratios:

* ``adamw_8bit`` vs ``adamw`` with foreach (state memory and step time: 8-bit vs fp32);
* ``paged_adamw_8bit`` vs ``adamw_8bit`` (what paging moves off the device);
* ``adamw`` fused (its default on CUDA) vs foreach;
* ``muon_adamw`` vs torch's Muon + AdamW(fused) built by hand.

    python benchmarks/bench_gpu.py [--d 1024] [--layers 8] [--reps 21]

Without CUDA it prints one line saying so and exits 0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import torch

import optreg

sys.path.insert(0, str(Path(__file__).parent))
from bench_muon import Stack, _by_hand


def _model(d: int, layers: int, vocab: int, first: dict[str, torch.Tensor]) -> Stack:
    model = Stack(d, layers, vocab).cuda()
    model.load_state_dict(first)
    gen = torch.Generator(device="cuda").manual_seed(0)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, device="cuda", generator=gen) * 1e-3
    return model


def _timed(step: Callable[[], None]) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    step()
    end.record()
    torch.cuda.synchronize()
    return float(start.elapsed_time(end))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=32768)
    parser.add_argument("--reps", type=int, default=21)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print(f"bench_gpu: no CUDA device here (torch {torch.__version__}); nothing measured")
        return 0
    torch.manual_seed(0)
    first = Stack(args.d, args.layers, args.vocab).state_dict()
    size = sum(t.numel() for t in first.values())
    variants: dict[str, Callable[[torch.nn.Module], Callable[[], None]]] = {
        "adamw (fused)": lambda m: optreg.get_optimizer("adamw", m, lr=1e-3).step,
        "adamw (foreach)": lambda m: (
            optreg.get_optimizer("adamw", m, lr=1e-3, fused=False, foreach=True).step
        ),
        "adamw_8bit": lambda m: optreg.get_optimizer("adamw_8bit", m, lr=1e-3).step,
        "paged_adamw_8bit": lambda m: optreg.get_optimizer("paged_adamw_8bit", m, lr=1e-3).step,
        "muon_adamw": lambda m: optreg.get_optimizer("muon_adamw", m, lr=0.02, adamw_lr=1e-3).step,
        "Muon + AdamW(fused) by hand": lambda m: _pair(_by_hand(m, fused=True)),
    }
    steps, memory = {}, {}
    for label, make in variants.items():
        model = _model(args.d, args.layers, args.vocab, first)
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        steps[label] = make(model)
        steps[label]()  # the state is allocated on the first step
        torch.cuda.synchronize()
        memory[label] = (torch.cuda.memory_allocated() - before) / 2**20
    times: dict[str, list[float]] = {k: [] for k in steps}
    order = list(steps)
    for i in range(args.reps):
        k0 = i % len(order)
        for k in order[k0:] + order[:k0]:
            times[k].append(_timed(steps[k]))
    ms = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"{torch.cuda.get_device_name()}, torch {torch.__version__}, d={args.d}, "
        f"{args.layers} layers, {size / 1e6:.0f}M parameters, median of {args.reps}"
    )
    print(f"{'variant':<30} {'step':>9} {'state on device':>16}")
    for k in order:
        print(f"{k:<30} {ms[k]:>7.2f}ms {memory[k]:>13.0f}MiB")
    for a, b in (
        ("adamw_8bit", "adamw (foreach)"),
        ("paged_adamw_8bit", "adamw_8bit"),
        ("adamw (fused)", "adamw (foreach)"),
        ("muon_adamw", "Muon + AdamW(fused) by hand"),
    ):
        share = memory[a] / memory[b] if memory[b] else float("nan")
        print(f"{a} / {b}: step {ms[a] / ms[b]:.2f}x, state on device {share:.2f}x")
    return 0


def _pair(opts: list[torch.optim.Optimizer]) -> Callable[[], None]:
    def step() -> None:
        for opt in opts:
            opt.step()

    return step


if __name__ == "__main__":
    sys.exit(main())
