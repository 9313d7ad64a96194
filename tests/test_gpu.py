"""On a CUDA device: the kit's capability checks, bitsandbytes' real 8-bit and paged state,
fused AdamW and FSDP2 on NCCL (``tox -e gpu``; README, "A GPU run"). Without CUDA the
module skips with one line, so the default CI never needs a GPU."""

from __future__ import annotations

import warnings

import pytest
import torch

if not torch.cuda.is_available():
    pytest.skip(
        f"no CUDA device (torch {torch.__version__}): the GPU checks run under tox -e gpu "
        "on a machine with one",
        allow_module_level=True,
    )

import optreg
from optreg.builtin.capabilities import table
from optreg.testing import measure_distributed, measure_local

pytestmark = pytest.mark.usefixtures("fresh_registry")
CUDA = torch.device("cuda")


def _builtins() -> list[str]:
    return sorted(e.name for e in optreg.optimizers.entries() if e.source == "builtin")


def test_the_kit_measures_every_builtin_on_cuda(capsys: pytest.CaptureFixture[str]) -> None:
    cpu = table()["optimizers"]
    found = {name: measure_local(name, "cuda") for name in _builtins()}
    for name, verdicts in found.items():
        for cap, verdict in verdicts.items():
            assert verdict.status in ("pass", "fail", "n/a"), (name, cap, verdict)
    for name in ("adam", "sgd", "muon_adamw"):
        assert found[name]["compile"].status == "pass", found[name]
    for name in ("adamw", "adamw_8bit", "lion_8bit", "adafactor"):
        assert found[name]["bf16"].status == "pass", found[name]
    with capsys.disabled():
        for cap in ("compile", "bf16"):
            ok = sorted(n for n, v in found.items() if v[cap].status == "pass")
            moved = sorted(n for n in found if found[n][cap].status != cpu[n][cap][0])
            print(f"\ncuda {cap}: {len(ok)} of {len(found)} pass; unlike the CPU: {moved}")


def test_the_8bit_state_is_uint8_and_paged_state_is_paged_on_cuda() -> None:
    weight = torch.nn.Parameter(torch.randn(512, 512, device=CUDA))  # over 1e5: paged
    for name, paged in (("adamw_8bit", False), ("paged_adamw_8bit", True)):
        p = torch.nn.Parameter(weight.detach().clone())
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no CPU fallback warning on CUDA
            opt = optreg.get_optimizer(name, [p], lr=1e-3)
        p.grad = torch.randn_like(p)
        opt.step()
        state = opt.state[p]
        assert state["state1"].dtype == torch.uint8, name
        assert state["state1"].device.type == "cuda"
        assert bool(getattr(state["state1"], "is_paged", False)) is paged, name


def test_fused_adamw_on_cuda_equals_foreach() -> None:
    torch.manual_seed(0)
    start = [torch.randn(64, 32, device=CUDA), torch.randn(32, device=CUDA)]
    runs = []
    for fused in (True, False):
        params = [torch.nn.Parameter(t.clone()) for t in start]
        opt = optreg.get_optimizer(
            "adamw", params, lr=1e-2, fused=fused, foreach=None if fused else True
        )
        gen = torch.Generator(device=CUDA).manual_seed(1)
        for _ in range(10):
            for p in params:
                p.grad = torch.randn(p.shape, device=CUDA, generator=gen)
            opt.step()
        runs.append(params)
    for a, b in zip(*runs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_ddp_and_fsdp2_on_nccl() -> None:
    found = measure_distributed(["adamw", "sgd", "muon_adamw", "adafactor"], device="cuda")
    for name, verdicts in found.items():
        for cap, verdict in verdicts.items():
            assert verdict.status == "pass", (name, cap, verdict.detail)
            assert " nccl rank" in verdict.detail
