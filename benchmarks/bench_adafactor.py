"""optreg's Adafactor vs transformers' Adafactor on BERT-base-like parameters (CPU).

Both optimizers start from the same parameters and see the same gradients (three
fixed random gradient sets, cycled); their steps are interleaved, so both see the
same machine noise. Interleaved with them runs the streaming floor: one
pass that reads each parameter and its gradient and writes the parameter
(``torch._foreach_add_``, 12 bytes per float32 parameter), which no optimizer step can
beat. Prints, per configuration, the median step time of each, the speed-up over
transformers (target: >= 3x at 1 thread), optreg's time over the floor (target: <= 2.3x).

Accuracy: transformers' Adafactor also runs in float64 on the same gradients (the
truth). After ``--steps`` steps the script prints the max relative parameter difference,
per tensor ``max|p - p_truth| / max|p_truth|`` maximised over tensors, of optreg and of
transformers' float32 run from the truth, and between the two. transformers takes the
parameter's and the update's RMS with one float32 norm, which torch accumulates serially
on the CPU (a relative error of ~1e-3 at the 23M values of the embedding); optreg's
reductions stay near 1e-7, so on these shapes it is closer to the truth than transformers
is, and the two differ by transformers' error. Target: optreg within 1e-5 of the truth
(or no further from it than transformers).

transformers is needed only here; install it in a separate environment:

    python3 -m venv /work/benchvenv-opt
    /work/benchvenv-opt/bin/pip install torch==2.13.0 transformers pluggy importlib-metadata
    /work/benchvenv-opt/bin/pip install -e .
    /work/benchvenv-opt/bin/python benchmarks/bench_adafactor.py [--layers 2] [--steps 50] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from optreg.builtin.adafactor import Adafactor

CONFIGS = {
    "relative_step (default)": {},
    "external lr": {"lr": 1e-3, "relative_step": False, "scale_parameter": False},
}


def bert_shapes(layers: int) -> list[tuple[int, ...]]:
    """Parameter shapes of BERT-base with ``layers`` encoder layers."""
    h, inter = 768, 3072
    shapes: list[tuple[int, ...]] = [(30522, h), (512, h), (2, h), (h,), (h,)]
    for _ in range(layers):
        shapes += [(h, h), (h,)] * 4  # query, key, value, attention output
        shapes += [(h,), (h,)]  # attention LayerNorm
        shapes += [(inter, h), (inter,), (h, inter), (h,)]  # intermediate, output
        shapes += [(h,), (h,)]  # output LayerNorm
    shapes += [(h, h), (h,)]  # pooler
    return shapes


def _rel(ps: list[torch.Tensor], qs: list[torch.Tensor]) -> float:
    """max over tensors of max|p - q| / max|q|, in float64."""
    return max(
        ((p.double() - q.double()).abs().max() / q.double().abs().max()).item()
        for p, q in zip(ps, qs, strict=True)
    )


def run(config: dict[str, object], shapes: list[tuple[int, ...]], steps: int, hf_cls: type) -> None:
    gen = torch.Generator().manual_seed(0)
    init = [torch.randn(s, generator=gen) * 0.02 for s in shapes]
    grad_sets = [[torch.randn(s, generator=gen) * 1e-3 for s in shapes] for _ in range(3)]
    ours = [torch.nn.Parameter(t.clone()) for t in init]
    theirs = [torch.nn.Parameter(t.clone()) for t in init]
    truth = [torch.nn.Parameter(t.double()) for t in init]
    del init
    floor = [t.clone() for t in ours]
    opt_ours = Adafactor(ours, **config)  # type: ignore[arg-type]
    opt_theirs = hf_cls(theirs, **config)
    opt_truth = hf_cls(truth, **config)
    t_ours: list[float] = []
    t_theirs: list[float] = []
    t_floor: list[float] = []
    for step in range(steps):
        grads = grad_sets[step % len(grad_sets)]
        for p, q, g in zip(ours, theirs, grads, strict=True):
            p.grad = g
            q.grad = g
        order = [
            (opt_ours.step, t_ours),
            (opt_theirs.step, t_theirs),
            (lambda g=grads: torch._foreach_add_(floor, g, alpha=-1e-3), t_floor),
        ]
        if step % 2:
            order.reverse()
        for step_fn, times in order:
            start = time.perf_counter()
            step_fn()
            times.append(time.perf_counter() - start)
        for p, g in zip(truth, grads, strict=True):  # untimed
            p.grad = g.double()
        opt_truth.step()
    ours_err, theirs_err, between = _rel(ours, truth), _rel(theirs, truth), _rel(ours, theirs)
    # The first step allocates state (and optreg's workspace): leave it out.
    med_ours = statistics.median(t_ours[1:])
    med_theirs = statistics.median(t_theirs[1:])
    med_floor = statistics.median(t_floor[1:])
    accurate = ours_err <= max(1e-5, theirs_err)
    ok = med_theirs / med_ours >= 3.0 and med_ours / med_floor <= 2.3 and accurate
    print(
        f"{next(k for k, v in CONFIGS.items() if v is config):24s} "
        f"optreg {med_ours * 1000:7.1f} ms  transformers {med_theirs * 1000:7.1f} ms  "
        f"floor {med_floor * 1000:6.1f} ms  speed-up {med_theirs / med_ours:5.2f}x  "
        f"optreg/floor {med_ours / med_floor:5.2f}x  from float64: optreg {ours_err:.1e}, "
        f"transformers {theirs_err:.1e} (between {between:.1e})  {'PASS' if ok else 'FAIL'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--layers", type=int, default=2, help="encoder layers (BERT-base: 12; 2 keeps a run short)"
    )
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        from transformers.optimization import Adafactor as HFAdafactor
    except ImportError:
        print(
            "SKIP: transformers is not installed; run this script from an environment that has "
            "it (see the module docstring)."
        )
        sys.exit(0)
    import transformers

    shapes = bert_shapes(args.layers)
    numel = sum(torch.Size(s).numel() for s in shapes)
    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"{torch.get_num_threads()} threads; BERT-base-like shapes, {args.layers} layers: "
        f"{len(shapes)} tensors, {numel / 1e6:.1f}M parameters; {args.steps} steps, "
        "interleaved, median step time (first step excluded)"
    )
    for config in CONFIGS.values():
        run(config, shapes, args.steps, HFAdafactor)


if __name__ == "__main__":
    main()
