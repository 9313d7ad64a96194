"""The Lightning helper's errors (it imports no Lightning, so these run without it)."""

from __future__ import annotations

import pytest
import torch

from optreg.integrations.lightning import configure_optimizers


def test_a_plain_module_is_told_what_the_helper_takes() -> None:
    with pytest.raises(TypeError) as info:
        configure_optimizers(torch.nn.Linear(2, 2), "adamw", "cosine")
    assert str(info.value) == (
        "configure_optimizers(module, ...) takes the LightningModule (`self` in its "
        "configure_optimizers), got Linear; for a plain nn.Module pass num_training_steps=, "
        "or use optreg.get_optimizer / optreg.get_scheduler"
    )
    built = configure_optimizers(
        torch.nn.Linear(2, 2), "adamw", "cosine", num_warmup_steps=1, num_training_steps=10
    )
    assert built["lr_scheduler"]["interval"] == "step"
