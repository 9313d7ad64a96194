"""optreg-torchao: lazy listing, transformers' names built as transformers builds them,
quantised state that resumes bit-identically through weights_only loading."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from optreg_torchao.plugin import OPTIMIZERS

import optreg
from optreg.testing import assert_table_current

# torch warns while compiling torchao's step; here, in pyproject.toml too, because the
# plugins env runs these tests under optreg's own pytest configuration
pytestmark = [
    # torchao's quantised state tensors, seen by torch.compile on every new shape
    pytest.mark.filterwarnings("ignore:.*does not implement _stable_hash_for_caching:UserWarning"),
    # torch's inductor, compiling torchao's step
    pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning"),
]

DIST = "optreg-torchao"
README = Path(__file__).parents[1] / "README.md"


@pytest.fixture(autouse=True)
def fresh(isolated_registry: None) -> None:
    """Every test with a registry of its own (optreg.testing's public fixture)."""


def test_listing_imports_no_torchao() -> None:
    code = (
        "import sys, optreg; n = {e.name for e in optreg.optimizers.entries() "
        "if e.provider == 'optreg_torchao'}; "
        f"print(sorted(set({sorted(OPTIMIZERS)!r}) - n), 'torchao' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[] False"


def model() -> torch.nn.Module:
    torch.manual_seed(0)
    # 64 x 64 = 4096 values: the smallest weight torchao quantises
    return torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Tanh(), torch.nn.Linear(64, 2))


X = torch.randn(16, 64, generator=torch.Generator().manual_seed(1))


def train(m: torch.nn.Module, opt: torch.optim.Optimizer, steps: int) -> list[torch.Tensor]:
    for _ in range(steps):
        opt.zero_grad()
        (m(X) ** 2).mean().backward()
        opt.step()
    return [p.detach().clone() for p in m.parameters()]


@pytest.mark.parametrize(
    ("name", "cls"), [("adamw_torch_4bit", "AdamW4bit"), ("adamw_torch_8bit", "AdamW8bit")]
)
def test_transformers_names_build_what_transformers_builds(name: str, cls: str) -> None:
    from transformers import Trainer, TrainingArguments

    args = TrainingArguments("/tmp/optreg-torchao", optim=name, learning_rate=1e-2, report_to=[])
    theirs_cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model())
    assert theirs_cls.__name__ == cls
    a, b = model(), model()
    theirs = theirs_cls(a.parameters(), **kwargs)
    ours = optreg.get_optimizer(
        name,
        b.parameters(),
        lr=1e-2,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
        weight_decay=0.0,
    )
    assert type(ours) is theirs_cls
    assert ours.block_size == kwargs["block_size"] == 256
    theirs.param_groups[0]["weight_decay"] = 0.0  # the Trainer gives it through its groups
    assert same(train(a, theirs, 4), train(b, ours, 4))


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("name", ["adamw_torch_4bit", "adamw8bit", "adamwfp8"])
def test_quantised_state_resumes_bit_identically(name: str, tmp_path: Path) -> None:
    a = model()
    opt = optreg.get_optimizer(name, a.parameters(), lr=1e-2)
    train(a, opt, 3)
    moment = opt.state[next(a.parameters())]["exp_avg"]
    assert type(moment).__name__.startswith("OptimState")  # the weight's state is quantised
    torch.save({"model": a.state_dict(), "opt": opt.state_dict()}, tmp_path / "ckpt.pt")
    expected = train(a, opt, 3)
    saved = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    b = model()
    b.load_state_dict(saved["model"])
    resumed = optreg.get_optimizer(name, b.parameters(), lr=1e-2)
    resumed.load_state_dict(saved["opt"])
    assert same(train(b, resumed, 3), expected)


def test_every_name_has_a_row_in_the_readme_kit_table_and_it_is_current() -> None:
    rows = assert_table_current(README, DIST)
    assert {r.name for r in rows} == set(OPTIMIZERS)
