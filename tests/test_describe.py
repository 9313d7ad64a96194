"""optreg._describe: what optimizer_info / scheduler_info / optreg info report about a name."""

from __future__ import annotations

import optreg


def test_info() -> None:
    info = optreg.optimizer_info("AdamW_Torch")
    assert info.name == "adamw"
    assert "adamw_torch" in info.aliases
    assert info.provider == "optreg"
    assert info.available is True and info.reason is None
    assert info.signature is not None and "lr" in info.signature
    assert info.qualified_name == "optreg:adamw"
    sinfo = optreg.scheduler_info("linear")
    assert set(sinfo.required_args) == {"num_warmup_steps", "num_training_steps"}


def test_runtime_info_provider() -> None:
    optreg.register_optimizer("mine", "torch.optim:SGD", description="mine")
    assert optreg.optimizer_info("mine").provider == "(registered at run time)"
    assert optreg.optimizer_info("mine").description == "mine"
