"""Element-wise optimizers step FSDP2 shards as local tensors (optreg.builtin.shards).

Workers on 2 gloo ranks step an FSDP2 model with an optreg name and an identical model
with torch's class of the same kernel (the DTensor path); the parameters and the state
must be equal bit for bit after three steps, and the state must still be DTensor.

Run one worker by hand with ``python tests/builtin/test_shards.py RANK WORLD PORT OUT``.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import HAS_MUON, join_gloo, run_ranks
from torch import nn

import optreg

WORLD = 2
#: name, its keywords, torch's class and keywords of the same kernel (the DTensor path)
CASES: dict[str, tuple[str, dict[str, Any], Any, dict[str, Any]]] = {
    "adamw": ("adamw", {"lr": 1e-2}, torch.optim.AdamW, {"lr": 1e-2, "fused": True}),
    "adamw-loop": (
        "adamw",
        {"lr": 1e-2, "foreach": False},
        torch.optim.AdamW,
        {"lr": 1e-2, "foreach": False},
    ),
    "adam": (
        "adam",
        {"lr": 1e-2, "weight_decay": 0.1},
        torch.optim.Adam,
        {"lr": 1e-2, "weight_decay": 0.1, "fused": True},
    ),
}


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 30), nn.Tanh(), nn.Linear(30, 5))  # 30, 5 rows: uneven


def _sharded(world: int) -> nn.Module:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    model = _model()
    mesh = init_device_mesh("cpu", (world,))
    for layer in (model[0], model[2]):
        fully_shard(layer, mesh=mesh)
    return fully_shard(model, mesh=mesh)  # type: ignore[no-any-return]


def _case(
    world: int, rank: int, name: str, kwargs: dict[str, Any], cls: Any, torch_kwargs: dict[str, Any]
) -> dict[str, Any]:
    ours, theirs = _sharded(world), _sharded(world)
    opt = optreg.get_optimizer(name, ours.parameters(), **kwargs)
    ref = cls(theirs.parameters(), **torch_kwargs)
    stepped: set[str] = set()  # what the step itself sees in the groups (hooks run in order)
    opt.register_step_pre_hook(
        lambda o, *_: stepped.update(type(p).__name__ for g in o.param_groups for p in g["params"])
    )
    for step in range(3):
        gen = torch.Generator().manual_seed(step * world + rank)
        x = torch.randn(4, 16, generator=gen)
        for model, o in ((ours, opt), (theirs, ref)):
            o.zero_grad()
            model(x).pow(2).sum().backward()
            o.step()
    same = all(
        torch.equal(p.to_local(), q.to_local())
        for p, q in zip(ours.parameters(), theirs.parameters(), strict=True)
    )
    state_same = all(
        torch.equal(getattr(a, "_local_tensor", a), getattr(b, "_local_tensor", b))
        for p, q in zip(ours.parameters(), theirs.parameters(), strict=True)
        for a, b in zip(opt.state[p].values(), ref.state[q].values(), strict=True)
    )
    kinds = sorted(
        {f"{k}:{type(v).__name__}" for p in ours.parameters() for k, v in opt.state[p].items()}
    )
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    saved = get_optimizer_state_dict(ours, opt)
    return {
        "stepped": sorted(stepped),
        "params_equal": same,
        "state_equal": state_same,
        "state_kinds": kinds,
        "groups_are_dtensor": all(
            type(p).__name__ == "DTensor" for g in opt.param_groups for p in g["params"]
        ),
        "saved_keys": sorted(saved["state"]),
        "fused": [g.get("fused") for g in opt.param_groups],
    }


def _muon_adamw(world: int, rank: int) -> dict[str, Any]:
    """muon_adamw's AdamW side: local, fused, equal to the DTensor path with fused."""
    ours, theirs = _sharded(world), _sharded(world)
    opt = optreg.get_optimizer("muon_adamw", ours, lr=0.02, adamw_lr=1e-2)
    ref = optreg.get_optimizer("muon_adamw", theirs, lr=0.02, adamw_lr=1e-2)
    for hooks in (ref.adamw._optimizer_step_pre_hooks, ref.adamw._optimizer_step_post_hooks):
        hooks.clear()  # the reference steps DTensors (its fused guard re-added below)
    from optreg.builtin.fused import fused_guard

    fused_guard(ref.adamw, "muon_adamw", chosen=True)
    for step in range(3):
        x = torch.randn(4, 16, generator=torch.Generator().manual_seed(step * world + rank))
        for model, o in ((ours, opt), (theirs, ref)):
            o.zero_grad()
            model(x).pow(2).sum().backward()
            o.step()
    return {
        "params_equal": all(
            torch.equal(p.to_local(), q.to_local())
            for p, q in zip(ours.parameters(), theirs.parameters(), strict=True)
        ),
        "fused": [g.get("fused") for g in opt.adamw.param_groups],
    }


def worker(rank: int, world: int, port: int, root: Path) -> None:
    import torch.distributed as dist

    join_gloo(rank, world, port)
    results: dict[str, Any] = {}
    try:
        for case, args in CASES.items():
            try:
                results[case] = _case(world, rank, *args)
            except Exception as e:
                results[case] = f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
            dist.barrier()
        if HAS_MUON:
            try:
                results["muon_adamw"] = _muon_adamw(world, rank)
            except Exception as e:
                results["muon_adamw"] = f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
    finally:
        if rank == 0:
            torch.save(results, root / "shards.pt")
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    root = tmp_path_factory.mktemp("shards")
    run_ranks(
        __file__,
        lambda rank, port: [str(rank), str(WORLD), str(port), str(root)],
        WORLD,
        "element-wise optimizers on FSDP2 shards",
    )
    return torch.load(root / "shards.pt", weights_only=True)  # type: ignore[no-any-return]


def _result(runs: dict[str, Any], case: str) -> dict[str, Any]:
    result = runs[case]
    if isinstance(result, str):
        pytest.fail(f"{case} failed in the workers:\n{result}")
    return result  # type: ignore[no-any-return]


@pytest.mark.parametrize("case", list(CASES))
def test_shards_step_locally_with_the_dtensor_paths_numbers(
    runs: dict[str, Any], case: str
) -> None:
    result = _result(runs, case)
    assert result["params_equal"] and result["state_equal"]
    assert result["stepped"] == ["Tensor"]  # the kernel ran on the local shards
    assert result["groups_are_dtensor"]  # the groups hold the DTensors again after a step
    # the moments stay DTensor (DCP reshards them); the step count a plain scalar, as torch
    assert result["state_kinds"] == ["exp_avg:DTensor", "exp_avg_sq:DTensor", "step:Tensor"]
    assert result["saved_keys"] == ["0.bias", "0.weight", "2.bias", "2.weight"]
    # fused is chosen for FSDP2 shards, as for plain tensors, unless a kernel is asked for
    assert result["fused"] == ([None] if case == "adamw-loop" else [True])


def test_muon_adamws_adamw_side_steps_shards_locally_and_fused(runs: dict[str, Any]) -> None:
    if "muon_adamw" not in runs:
        pytest.skip("torch.optim.Muon needs torch>=2.9")
    result = _result(runs, "muon_adamw")
    assert result["params_equal"]
    assert result["fused"] == [True]


def test_a_group_fused_cannot_take_steps_with_torchs_default_kernel() -> None:
    """optreg chose fused; a complex group added later steps with the default kernel (it
    raised in torch's fused kernel), as ``torch.optim.AdamW`` steps it."""
    weight = nn.Parameter(torch.randn(4, 4))
    opt = optreg.get_optimizer("adamw", [weight], lr=0.1)
    assert opt.param_groups[0]["fused"] is True
    z = nn.Parameter(torch.randn(3, dtype=torch.complex64))
    ref = z.detach().clone().requires_grad_()
    opt.add_param_group({"params": [z]})
    plain = torch.optim.AdamW([ref], lr=0.1)
    for p in (weight, z, ref):
        p.grad = torch.ones_like(p)
    opt.step()
    plain.step()
    assert opt.param_groups[1]["fused"] is False and opt.param_groups[0]["fused"] is True
    assert torch.equal(z, ref)


if __name__ == "__main__":
    worker(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
