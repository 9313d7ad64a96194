"""The real transformers Trainer takes optreg's classes as ``optimizer_cls_and_kwargs``."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

import optreg

transformers = pytest.importorskip("transformers")


class _Data(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    def __init__(self) -> None:
        gen = torch.Generator().manual_seed(0)
        self.ids = torch.randint(0, 50, (32, 8), generator=gen)
        self.labels = (self.ids.sum(dim=1) % 2).long()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def _model() -> Any:
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=2,
    )
    return transformers.BertForSequenceClassification(config)  # built from a config: no hub


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("adamw", {"lr": 1e-3}),
        ("adamw_hf", {"lr": 1e-3}),
        ("adafactor", {"lr": 1e-3, "relative_step": False, "scale_parameter": False}),
        ("sgd", {"lr": 1e-2, "momentum": 0.9}),
        ("nadam", {"lr": 1e-3}),
    ],
)
def test_optimizer_cls_and_kwargs(tmp_path: Path, name: str, kwargs: dict[str, Any]) -> None:
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=4,
        per_device_train_batch_size=8,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
    )
    trainer = transformers.Trainer(
        model=_model(),
        args=args,
        train_dataset=_Data(),
        optimizer_cls_and_kwargs=(optreg.get_optimizer_cls(name), kwargs),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # transformers' and torch's own notes
        trainer.train()
    inner = getattr(trainer.optimizer, "optimizer", trainer.optimizer)  # accelerate's wrapper
    expected = type(optreg.get_optimizer(name, [torch.nn.Parameter(torch.zeros(2))], **kwargs))
    assert type(inner) is expected
    assert trainer.state.global_step == 4
