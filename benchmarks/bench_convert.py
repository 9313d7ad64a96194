"""The error of optreg.convert_state_dict between 8-bit and fp32 optimizer state.

For each pair, an fp32 run (torch AdamW, or bitsandbytes' 32-bit Lion) takes STEPS steps
on BERT-base-like shapes with random gradients; its state is converted to the 8-bit
layout and back, and the relative error ||x - x'|| / ||x|| of each moment is printed
(what quantising to 8 bit loses). Then an 8-bit run is converted to fp32, both continue
for STEPS more steps on the same gradients, and the parameters' relative difference is
printed (what a run resumed in fp32 drifts from one that stayed in 8 bit).

    python benchmarks/bench_convert.py [--steps 20]
"""

from __future__ import annotations

import argparse
import warnings

import torch

import optreg

SHAPES = [(768, 768), (3072, 768)]
PAIRS = [("adamw", "adamw_8bit"), ("lion_32bit", "lion_8bit")]


def _params(seed: int) -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, generator=gen) * 0.02) for s in SHAPES]


def _steps(opt: torch.optim.Optimizer, params: list[torch.nn.Parameter], n: int, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen) * 1e-2
        opt.step()


def _moments(state: dict) -> list[torch.Tensor]:
    if "exp_avg" in state:
        return [state["exp_avg"], state["exp_avg_sq"]]
    inner = state["__bnb_optimizer_quant_state__"]
    return [inner[k] for k in ("state1", "state2") if k in inner]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / a.float().norm())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    print(
        f"{'pair':<24} {'moment':<8} {'fp32 -> 8-bit -> fp32':>22} {'params after 8-bit -> fp32':>28}"
    )
    for fp32, q8 in PAIRS:
        params = _params(0)
        opt = optreg.get_optimizer(fp32, params, lr=1e-3, weight_decay=0.0)
        _steps(opt, params, args.steps, 1)
        saved = opt.state_dict()
        back = optreg.convert_state_dict(optreg.convert_state_dict(saved, fp32, q8), q8, fp32)
        count = len(_moments(saved["state"][0]))
        errors = [
            max(
                _rel(_moments(saved["state"][i])[k], _moments(back["state"][i])[k])
                for i in range(len(SHAPES))
            )
            for k in range(count)
        ]
        # an 8-bit run, resumed once in 8 bit and once converted to fp32
        params8 = _params(0)
        opt8 = optreg.get_optimizer(q8, params8, lr=1e-3, weight_decay=0.0)
        _steps(opt8, params8, args.steps, 1)
        stay = [p.detach().clone().requires_grad_() for p in params8]
        moved = [p.detach().clone().requires_grad_() for p in params8]
        stay_opt = optreg.get_optimizer(q8, stay, lr=1e-3, weight_decay=0.0)
        stay_opt.load_state_dict(opt8.state_dict())
        moved_opt = optreg.get_optimizer(fp32, moved, lr=1e-3, weight_decay=0.0)
        moved_opt.load_state_dict(optreg.convert_state_dict(opt8.state_dict(), q8, fp32))
        _steps(stay_opt, stay, args.steps, 2)
        _steps(moved_opt, moved, args.steps, 2)
        drift = max(_rel(a, b) for a, b in zip(stay, moved, strict=True))
        for k, error in enumerate(errors):
            shown = f"{drift:.2e}" if k == 0 else ""
            moment = ("first", "second")[k]
            print(f"{fp32 + ' <-> ' + q8:<24} {moment:<8} {error:>22.2e} {shown:>28}")


if __name__ == "__main__":
    main()
