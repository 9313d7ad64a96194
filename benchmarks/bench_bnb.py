"""bitsandbytes names: optreg-built vs bitsandbytes-built step time, and state bytes.

For adamw_8bit, paged_adamw_8bit and lion_8bit, on CPU:

* step time of ``optreg.get_optimizer(name, ...)`` over the same bitsandbytes class
  built directly with the same arguments; the two step alternately on twin models
  (interleaved, so both see the same machine noise), ratio of medians
  (target <= 1.03). The ratio is judged on process CPU time, which a busy shared
  machine disturbs far less than wall time; wall-time medians are printed too;
* optimizer-state bytes per parameter over fp32 ``torch.optim.AdamW``
  (target <= 0.27x for the 8-bit names).

    python benchmarks/bench_bnb.py [--steps 201] [--vocab 1024] [--width 64] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from typing import Any

import torch
from torch import nn

import optreg

NAMES = {  # optreg name -> bitsandbytes class built directly
    "adamw_8bit": "AdamW8bit",
    "paged_adamw_8bit": "PagedAdamW8bit",
    "lion_8bit": "Lion8bit",
}


def make_model(vocab: int, width: int, seed: int = 0) -> nn.Module:
    """A small transformer-shaped stack: an embedding and two MLP blocks with LayerNorm."""
    torch.manual_seed(seed)
    blocks: list[nn.Module] = [nn.Embedding(vocab, width)]
    for _ in range(2):
        blocks += [nn.LayerNorm(width), nn.Linear(width, 4 * width), nn.Linear(4 * width, width)]
    model = nn.Sequential(*blocks)
    gen = torch.Generator().manual_seed(seed + 1)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=gen) * 1e-2
    return model


def state_bytes(opt: torch.optim.Optimizer) -> int:
    """Bytes of every tensor in the optimizer state, shared tensors (qmaps) counted once."""
    seen: dict[int, int] = {}
    for state in opt.state.values():
        for value in state.values():
            if isinstance(value, torch.Tensor):
                seen[value.untyped_storage().data_ptr()] = value.untyped_storage().nbytes()
    return sum(seen.values())


def timed_step(opt: torch.optim.Optimizer) -> tuple[float, float]:
    """(process CPU seconds, wall seconds) of one step."""
    cpu, wall = time.process_time(), time.perf_counter()
    opt.step()
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=201, help="timed steps per optimizer")
    parser.add_argument("--vocab", type=int, default=1024)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*[Pp]aged optimizers are not supported on CPU")
    import bitsandbytes
    import bitsandbytes.optim as bnb_optim

    probe = make_model(args.vocab, args.width)
    n_params = sum(p.numel() for p in probe.parameters())
    small = sum(p.numel() for p in probe.parameters() if p.numel() < 4096)
    print(
        f"bitsandbytes {bitsandbytes.__version__}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; model: {n_params:,} parameters in "
        f"{len(list(probe.parameters()))} tensors ({small:,} in tensors below min_8bit_size)"
    )

    reference = torch.optim.AdamW(probe.parameters(), lr=1e-3)
    reference.step()
    fp32_per_param = state_bytes(reference) / n_params

    print(
        f"\n{'':18} {'CPU ms / step (median)':^30}   {'wall ms / step (median)':^30}\n"
        f"{'name':18} {'optreg':>10} {'bnb':>10} {'ratio':>7}   {'optreg':>10} {'bnb':>10} "
        f"{'ratio':>7}   {'state B/param':>13} {'vs fp32 AdamW':>13}"
    )
    rows: list[tuple[str, float, float]] = []
    for name, cls_name in NAMES.items():
        ours_model, theirs_model = (
            make_model(args.vocab, args.width),
            make_model(args.vocab, args.width),
        )
        ours: Any = optreg.get_optimizer(name, list(ours_model.parameters()), lr=1e-3)
        theirs: Any = getattr(bnb_optim, cls_name)(list(theirs_model.parameters()), lr=1e-3)
        if type(ours) is not type(theirs):
            raise SystemExit(f"{name}: optreg built {type(ours)}, expected {type(theirs)}")
        ours.step()  # state allocation happens at the first step: not timed
        theirs.step()
        t_ours: list[tuple[float, float]] = []
        t_theirs: list[tuple[float, float]] = []
        for i in range(args.steps):  # alternate which one goes first
            if i % 2:
                t_theirs.append(timed_step(theirs))
                t_ours.append(timed_step(ours))
            else:
                t_ours.append(timed_step(ours))
                t_theirs.append(timed_step(theirs))
        m_ours = statistics.median(c for c, _ in t_ours)
        m_theirs = statistics.median(c for c, _ in t_theirs)
        w_ours = statistics.median(w for _, w in t_ours)
        w_theirs = statistics.median(w for _, w in t_theirs)
        per_param = state_bytes(ours) / n_params
        if state_bytes(ours) != state_bytes(theirs):
            raise SystemExit(f"{name}: state bytes differ from bitsandbytes built directly")
        ratio = m_ours / m_theirs
        rows.append((name, ratio, per_param / fp32_per_param))
        print(
            f"{name:18} {m_ours * 1e3:10.1f} {m_theirs * 1e3:10.1f} {ratio:7.3f}   "
            f"{w_ours * 1e3:10.1f} {w_theirs * 1e3:10.1f} {w_ours / w_theirs:7.3f}   "
            f"{per_param:13.3f} {per_param / fp32_per_param:12.3f}x"
        )
    blank = f"{'':>10} {'':>10} {'':>7}   "
    print(f"{'torch AdamW fp32':18} {blank}{blank}{fp32_per_param:13.3f} {1:12.3f}x")
    worst_ratio = max(r for _, r, _ in rows)
    worst_state = max(s for _, _, s in rows)
    print(
        f"\nCPU time per step optreg / bitsandbytes: worst {worst_ratio:.3f} (target <= 1.03) "
        f"{'OK' if worst_ratio <= 1.03 else 'MISSED'}; "
        f"8-bit state vs fp32 AdamW: worst {worst_state:.3f}x (target <= 0.27x) "
        f"{'OK' if worst_state <= 0.27 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
