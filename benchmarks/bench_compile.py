"""A compiled optimizer step vs the eager one, and its recompiles under a schedule.

A transformer-shaped stack (``bench_muon.Stack``: an embedding, per layer a fused QKV, an
output projection, a 4d MLP and two LayerNorms, a final norm and a head; d=512, 6 layers,
a vocabulary of 8192: 27M parameters) with fixed random gradients. For each name
(``adamw``, ``adamw_hf``, ``adafactor``, ``lion_8bit``, ``muon_adamw``): one optimizer
stepped eagerly, one whose ``step`` is ``torch.compile``d (inductor, counted by
TorchDynamo's ``CompileCounterWithBackend``), each built with a 0-dim tensor lr where the
name takes one. The ``cosine`` schedule (100 steps, 10 of warmup) changes the lr every
step; the script counts the frames compiled after the first step (the goal: 0), then
times REPS steps of each, interleaved, and prints the medians and compiled/eager.

    python benchmarks/bench_compile.py [--names adamw muon_adamw] [--d 512] [--reps 11]

Compiling takes minutes on a small CPU (inductor builds C++ for each graph).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch._dynamo.testing import CompileCounterWithBackend

import optreg

sys.path.insert(0, str(Path(__file__).parent))
from bench_muon import Stack

NAMES = ("adamw", "adamw_hf", "adafactor", "lion_8bit", "muon_adamw")
LR = {"adamw": 1e-3, "adamw_hf": 1e-3, "adafactor": 1e-3, "lion_8bit": 1e-4, "muon_adamw": 0.02}
EXTRA: dict[str, dict[str, Any]] = {
    "adafactor": {"scale_parameter": False, "relative_step": False, "warmup_init": False}
}
SCHEDULED = 100


def _grads(model: torch.nn.Module) -> None:
    gen = torch.Generator().manual_seed(0)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=gen) * 1e-3


def _build(name: str, model: torch.nn.Module) -> tuple[Any, str]:
    """The optimizer with a tensor lr where the name takes one, else a float lr."""
    kwargs = EXTRA.get(name, {})
    try:
        return optreg.get_optimizer(name, model, lr=torch.tensor(LR[name]), **kwargs), "tensor lr"
    except (TypeError, ValueError) as e:
        why = " ".join(str(e).split())[:70]
        return optreg.get_optimizer(name, model, lr=LR[name], **kwargs), f"float lr ({why})"


def _median_ms(step: Any, reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        start = time.perf_counter()
        step()
        out.append((time.perf_counter() - start) * 1e3)
    return out


def run(name: str, d: int, layers: int, vocab: int, reps: int) -> dict[str, Any]:
    torch.manual_seed(0)
    eager_model, compiled_model = Stack(d, layers, vocab), Stack(d, layers, vocab)
    compiled_model.load_state_dict(eager_model.state_dict())
    _grads(eager_model)
    _grads(compiled_model)
    eager, how = _build(name, eager_model)
    opt, _ = _build(name, compiled_model)
    schedule = optreg.get_scheduler(
        "cosine", opt, num_warmup_steps=10, num_training_steps=SCHEDULED
    )
    torch._dynamo.reset()
    counter = CompileCounterWithBackend("inductor")
    step = torch.compile(opt.step, backend=counter)
    start = time.perf_counter()
    try:
        step()
    except Exception as e:
        text = " ".join(str(e).split())[:160]
        return {"name": name, "lr": how, "error": f"{type(e).__name__}: {text}"}
    compile_s = time.perf_counter() - start
    schedule.step()
    first = counter.frame_count
    for _ in range(SCHEDULED - 1):
        step()
        schedule.step()
    recompiles = counter.frame_count - first
    eager.step()
    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    for i in range(reps):  # interleaved, the order alternating
        pair = [("eager", eager.step), ("compiled", step)]
        for key, fn in pair if i % 2 == 0 else pair[::-1]:
            times[key] += _median_ms(fn, 1)
    return {
        "name": name,
        "lr": how,
        "graphs": first,
        "recompiles": recompiles,
        "compile_s": compile_s,
        "eager": statistics.median(times["eager"]),
        "compiled": statistics.median(times["compiled"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", nargs="+", default=list(NAMES))
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--reps", type=int, default=11)
    args = parser.parse_args()
    logging.getLogger("torch._dynamo").setLevel(logging.ERROR)
    size = sum(p.numel() for p in Stack(args.d, args.layers, args.vocab).parameters())
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, d={args.d}, "
        f"{args.layers} layers, {size / 1e6:.1f}M parameters; recompiles after the first "
        f"of {SCHEDULED} cosine-scheduled steps; median of {args.reps} interleaved steps"
    )
    print(
        f"{'name':<11} {'graphs':>6} {'recompiles':>10} {'compile':>8} {'eager':>9} "
        f"{'compiled':>9} {'ratio':>6}  lr"
    )
    for name in args.names:
        r = run(name, args.d, args.layers, args.vocab, args.reps)
        if "error" in r:
            print(f"{name:<11} the compiled step raised {r['error']}  ({r['lr']})")
            continue
        print(
            f"{name:<11} {r['graphs']:>6} {r['recompiles']:>10} {r['compile_s']:>7.0f}s "
            f"{r['eager']:>7.1f}ms {r['compiled']:>7.1f}ms {r['compiled'] / r['eager']:>5.2f}x"
            f"  {r['lr']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
