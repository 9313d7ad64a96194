"""optreg-single-optimizers: listing is lazy, the names build what transformers builds."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from optreg_single_optimizers.plugin import NAMES
from torch import nn

import optreg
from optreg.testing import assert_table_current

# galore_torch warns on every GaLoreAdamW: its AdamW is a copy of transformers' old one
pytestmark = pytest.mark.filterwarnings(
    "ignore:This implementation of AdamW is deprecated:FutureWarning"
)

DIST = "optreg-single-optimizers"
README = Path(__file__).parents[1] / "README.md"


@pytest.fixture(autouse=True)
def fresh(isolated_registry: None) -> None:
    """Every test with a registry of its own (optreg.testing's public fixture)."""


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 8)
        self.attn = nn.Linear(8, 8)
        self.mlp = nn.Linear(8, 8)
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.mlp(torch.relu(self.attn(self.emb(x))))
        return (self.head(self.norm(h)) ** 2).mean()


X = torch.tensor([1, 2, 3, 4, 5])


def tiny() -> Tiny:
    torch.manual_seed(0)
    return Tiny()


def train(model: nn.Module, opt: torch.optim.Optimizer, steps: int = 6) -> list[torch.Tensor]:
    for _ in range(steps):
        opt.zero_grad()
        model(X).backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def q(name: str) -> str:
    return f"{DIST}:{name}"


def test_listing_imports_none_of_the_packages() -> None:
    code = (
        "import sys, optreg; names = {e.name for e in optreg.optimizers.entries() "
        "if e.provider == 'optreg_single_optimizers'}; "
        f"print(sorted(set({sorted(NAMES)!r}) - names), "
        "[m for m in ('galore_torch', 'lion_pytorch', 'optimi', 'lomo_optim', 'kron_torch') "
        "if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[] []"


@pytest.mark.parametrize(
    ("name", "install"),
    [
        ("adamw_torch_xla", "pip install torch_xla"),
        ("adamw_torch_npu_fused", "pip install torch_npu"),
        ("adamw_anyprecision", "pip install git+https://github.com/pytorch/torchdistx"),
    ],
)
def test_hardware_names_resolve_and_say_what_they_need(name: str, install: str) -> None:
    entry = optreg.optimizers.resolve(q(name))
    available, reason = optreg.optimizers.status(entry)
    assert available is False
    assert reason is not None and reason.endswith(f"install it with: {install}")
    assert optreg.optimizers.resolve(q(name)).metadata["hardware"]


def test_a_missing_package_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec  # optreg asks it whether a module is installed
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "optimi" else real(name, *a)
    )
    available, reason = optreg.optimizers.status(optreg.optimizers.resolve(q("stable_adamw")))
    assert available is False
    assert reason == (
        "module 'optimi' of target 'optimi:StableAdamW' is not installed; install it with: "
        'pip install "optreg-single-optimizers[torch-optimi]"'
    )


def _transformers(optim: str, model: nn.Module, **args: object) -> torch.optim.Optimizer:
    from transformers import Trainer, TrainingArguments

    targs = TrainingArguments("/tmp/optreg-single", optim=optim, report_to=[], **args)  # type: ignore[arg-type]
    cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(targs, model)
    return cls(kwargs.pop("params"), **kwargs)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("name", "targets", "extra"),
    [
        ("galore_adamw", ["attn", "mlp"], {}),
        ("galore_adafactor", r".*(attn|mlp)", {}),
        ("apollo_adamw", "all-linear", {}),
    ],
)
def test_lowrank_names_step_exactly_as_transformers_builds_them(
    name: str, targets: object, extra: dict[str, object]
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # galore_torch's own deprecation notes
        theirs_model = tiny()
        theirs = _transformers(
            name,
            theirs_model,
            optim_target_modules=targets,
            learning_rate=1e-2,
            adam_epsilon=1e-6,  # APOLLO's own default, which transformers overrides
            optim_args="rank=4,update_proj_gap=2",
        )
        ours_model = tiny()
        ours = optreg.get_optimizer(
            name, ours_model, lr=1e-2, target_modules=targets, rank=4, update_proj_gap=2
        )
        assert type(ours) is type(theirs)
        options = [{k: v for k, v in g.items() if k != "params"} for g in ours.param_groups]
        assert options == [
            {k: v for k, v in g.items() if k != "params"} for g in theirs.param_groups
        ]
        assert same(train(ours_model, ours), train(theirs_model, theirs))


def test_target_modules_said_as_a_rule_builds_the_same_optimizer() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a_model, b_model = tiny(), tiny()
        a = optreg.get_optimizer(
            "galore_adamw", a_model, lr=1e-2, target_modules=["attn", "mlp"], rank=4
        )
        rule = {"module": "linear", "match": ["attn", "mlp"], "rank": 4}  # ndim 2 is implied
        b = optreg.get_optimizer("galore_adamw", b_model, lr=1e-2, rules=[rule])
        assert same(train(a_model, a), train(b_model, b))


def test_layerwise_steps_in_backward_exactly_like_the_whole_model_step() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a_model, b_model, c_model = tiny(), tiny(), tiny()
        kw = {"lr": 1e-2, "target_modules": "all-linear", "rank": 4, "update_proj_gap": 2}
        whole = optreg.get_optimizer("galore_adamw", a_model, **kw)
        layerwise = optreg.get_optimizer("galore_adamw_layerwise", b_model, **kw)
        expected = train(a_model, whole)
        # the updates happen in backward(): step() adds nothing
        for _ in range(6):
            b_model(X).backward()
            assert all(p.grad is None for p in b_model.parameters())
            assert layerwise.step() is None
        assert same([p.detach() for p in b_model.parameters()], expected)
        # transformers' own layer-wise build registers its hooks on the model
        from transformers import Trainer, TrainingArguments

        targs = TrainingArguments(
            "/tmp/optreg-single",
            optim="galore_adamw_layerwise",
            optim_target_modules="all-linear",
            learning_rate=1e-2,
            optim_args="rank=4,update_proj_gap=2",
            report_to=[],
        )
        Trainer.get_optimizer_cls_and_kwargs(targs, c_model)
        for _ in range(6):
            c_model(X).backward()
        assert same([p.detach() for p in c_model.parameters()], expected)


def test_a_schedule_on_the_layerwise_optimizer_scales_every_parameter() -> None:
    model = tiny()
    opt = optreg.get_optimizer("galore_adamw_layerwise", model, lr=0.1, target_modules=["attn"])
    sched = optreg.get_scheduler("linear", opt, num_warmup_steps=0, num_training_steps=4)
    model(X).backward()
    opt.step()
    sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.075] * len(opt.param_groups))
    assert [g["lr"] for g in opt.inner.param_groups] == [g["lr"] for g in opt.param_groups]
    opt.remove_hooks()
    before = [p.detach().clone() for p in model.parameters()]
    model(X).backward()
    assert same([p.detach() for p in model.parameters()], before)


def test_layerwise_state_round_trips_but_the_projector_is_not_weights_only(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw = {"lr": 1e-2, "target_modules": ["attn"], "rank": 4, "update_proj_gap": 2}
        a_model = tiny()
        a = optreg.get_optimizer("galore_adamw_layerwise", a_model, **kw)
        for _ in range(3):
            a_model(X).backward()
        torch.save(a.state_dict(), tmp_path / "opt.pt")
        with pytest.raises(Exception, match="Weights only load failed"):
            torch.load(tmp_path / "opt.pt", weights_only=True)
        b_model = tiny()
        b_model.load_state_dict(a_model.state_dict())
        b = optreg.get_optimizer("galore_adamw_layerwise", b_model, **kw)
        b.load_state_dict(torch.load(tmp_path / "opt.pt", weights_only=False))
        assert b.inner.state is b.state and b.inner.param_groups is b.param_groups
        for _ in range(3):
            a_model(X).backward()
            b_model(X).backward()
        assert same(
            [p.detach() for p in a_model.parameters()], [p.detach() for p in b_model.parameters()]
        )


def test_lowrank_errors_name_the_problem() -> None:
    model = tiny()
    with pytest.raises(ValueError, match=r"galore_adamw projects .*give target_modules"):
        optreg.get_optimizer("galore_adamw", model)
    with pytest.raises(
        ValueError,
        match=r"no nn.Linear module matches target_modules=\['qkv'\]; the linear modules are attn, mlp, head",
    ):
        optreg.get_optimizer("galore_adamw", model, target_modules=["qkv"])
    with pytest.raises(TypeError, match="target_modules names modules, so pass the nn.Module"):
        optreg.get_optimizer(
            "galore_adamw", list(model.named_parameters()), target_modules=["attn"]
        )
    with pytest.raises(TypeError, match="target_modules must be a list of strings"):
        optreg.get_optimizer("galore_adamw", model, target_modules=3)
    with pytest.raises(TypeError, match="lr is required"):
        optreg.get_optimizer("galore_adafactor", model, target_modules=["attn"])


def test_lomo_takes_the_model_and_trains_through_fused_backward() -> None:
    model = tiny()
    opt = optreg.get_optimizer(q("lomo"), model, lr=1e-2)
    assert type(opt).__name__ == "Lomo"
    with torch.no_grad():
        before = float(model(X))
    for _ in range(5):
        opt.fused_backward(model(X), 1e-2)
    with torch.no_grad():
        assert float(model(X)) < before
    with pytest.raises(TypeError, match="lomo takes the nn.Module"):
        optreg.get_optimizer(q("lomo"), list(model.parameters()))
    with pytest.raises(ValueError, match="takes no param groups, so rules cannot apply"):
        optreg.get_optimizer(q("lomo"), model, rules=[{"match": "attn", "lr": 1.0}])


def test_every_name_has_a_row_in_the_readme_kit_table_and_it_is_current() -> None:
    rows = assert_table_current(README, DIST)
    assert {r.name for r in rows} == set(NAMES)


def test_a_lowrank_name_runs_optregs_prepare_hook_on_its_groups() -> None:
    """The factory makes the groups (the projected ones carry rank=), so it takes
    ``optreg_prepare`` and calls it on them; the hook's edits are what GaLore gets."""
    factory = optreg.optimizers.load("galore_adamw")
    assert "optreg_prepare" in (optreg.optimizer_info("galore_adamw").signature or "")
    seen: list[list[int | None]] = []

    def prepare(groups: list[dict], kwargs: dict) -> None:
        seen.append([g.get("rank") for g in groups])
        kwargs["lr"] = 5e-3

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # galore_torch's own deprecation notes
        opt = factory(tiny(), lr=1e-2, target_modules=["attn"], rank=4, optreg_prepare=prepare)
    assert seen == [[g.get("rank") for g in opt.param_groups]] and 4 in seen[0]
    assert {g["lr"] for g in opt.param_groups} == {5e-3}
