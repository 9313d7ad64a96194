"""The name's policies under the real Lightning Trainer: OptimizerModes gives a
schedule-free optimizer's eval-mode weights to validation and to every checkpoint, and
clip_gradients leaves muon_adamw's Muon side unclipped."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import optreg

L = pytest.importorskip("lightning")
from optreg.integrations.lightning import (  # noqa: E402  (after the importorskip)
    OptimizerModes,
    clip_gradients,
    configure_optimizers,
)


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's notes (workers, logging, pytree, ...)
        yield


def _loader() -> torch.utils.data.DataLoader[Any]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(24, 6, generator=gen)
    return torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, x.sum(dim=1, keepdim=True).sin()), batch_size=4
    )


class _Model(L.LightningModule):  # type: ignore[misc]
    def __init__(self, optimizer: str, **kwargs: Any) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(6, 8), torch.nn.LayerNorm(8), torch.nn.Tanh(), torch.nn.Linear(8, 1)
        )
        self.choice = (optimizer, kwargs)
        self.seen: dict[int, list[torch.Tensor]] = {}

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return 100.0 * torch.nn.functional.mse_loss(self.net(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.seen[self.trainer.global_step] = [p.detach().clone() for p in self.parameters()]

    def configure_optimizers(self) -> Any:
        optimizer, kwargs = self.choice
        return configure_optimizers(self, optimizer, optimizer_kwargs=kwargs)

    def configure_gradient_clipping(
        self, optimizer: Any, gradient_clip_val: Any = None, gradient_clip_algorithm: Any = None
    ) -> None:
        clip_gradients(self, optimizer, gradient_clip_val, gradient_clip_algorithm)


class _Expected(L.Callback):  # type: ignore[misc]
    """The schedule-free package's procedure on a copy after each step: eval() gives the
    weights to evaluate and save."""

    def __init__(self) -> None:
        self.expected: dict[int, list[torch.Tensor]] = {}
        self.train_point: dict[int, list[torch.Tensor]] = {}

    def on_train_batch_end(self, trainer: Any, module: Any, *_: Any) -> None:
        step = trainer.global_step
        self.train_point[step] = [p.detach().clone() for p in module.parameters()]
        twin, opt = copy.deepcopy((module.net, trainer.optimizers[0]))
        opt.eval()
        self.expected[step] = [p.detach().clone() for p in twin.parameters()]


def _trainer(tmp_path: Path, callbacks: list[Any], **kwargs: Any) -> Any:
    return L.Trainer(
        default_root_dir=str(tmp_path),
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=callbacks,
        **kwargs,
    )


def test_optimizer_modes_evaluate_and_save_the_eval_mode_weights(tmp_path: Path) -> None:
    pytest.importorskip("schedulefree")
    expected = _Expected()
    saves = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=str(tmp_path / "ckpt"), every_n_train_steps=4, save_top_k=-1
    )
    model = _Model("schedule_free_adamw", lr=1e-2)
    trainer = _trainer(
        tmp_path, [OptimizerModes(), expected, saves], max_steps=6, val_check_interval=3
    )
    trainer.fit(model, _loader(), _loader())
    for step in (3, 6):  # validation ran on the eval-mode weights
        assert all(map(torch.equal, model.seen[step], expected.expected[step])), step
    (path,) = (tmp_path / "ckpt").glob("*step=4*.ckpt")
    saved = torch.load(path, weights_only=False)
    values = list(saved["state_dict"].values())
    assert all(map(torch.equal, values, expected.expected[4]))
    assert not all(map(torch.equal, expected.train_point[4], expected.expected[4]))
    assert saved["optimizer_states"][0]["param_groups"][0]["train_mode"] is False
    opt = trainer.optimizers[0]
    assert opt.param_groups[0]["train_mode"] is True  # back to training after each


def test_clip_gradients_leaves_muon_adamws_muon_side_unclipped(tmp_path: Path) -> None:
    if not optreg.optimizers.status(optreg.optimizers["muon"])[0]:
        pytest.skip("needs torch.optim.Muon (torch >= 2.9)")
    model = _Model("muon_adamw", lr=0.02, adamw_lr=1e-3)
    raw: dict[str, torch.Tensor] = {}
    for name, p in model.named_parameters():
        p.register_post_accumulate_grad_hook(
            lambda t, name=name: raw.__setitem__(name, t.grad.detach().clone())  # type: ignore[union-attr]
        )
    stepped: dict[str, torch.Tensor] = {}

    class _Stepped(L.Callback):  # type: ignore[misc]
        def on_train_start(self, trainer: Any, module: Any) -> None:
            names = {id(p): n for n, p in module.named_parameters()}
            outer = trainer.optimizers[0]  # Lightning steps it with a closure: its sides
            for side in (outer.muon, outer.adamw):  # step after the closure's backward
                side.register_step_pre_hook(
                    lambda opt, *_: stepped.update(
                        {names[id(p)]: p.grad.detach().clone() for p in module.parameters()}
                    )
                )

    trainer = _trainer(tmp_path, [_Stepped()], max_steps=1, gradient_clip_val=1.0)
    trainer.fit(model, _loader())
    opt = trainer.optimizers[0]
    assert opt.routes["net.0.weight"] == "muon"
    muon = [n for n, side in opt.routes.items() if side == "muon"]
    for name in muon:
        assert torch.equal(stepped[name], raw[name]), name
    names = {id(p): n for n, p in model.named_parameters()}
    adamw = [
        names[id(p)] for g in opt.param_groups if g["optimizer"] == "adamw" for p in g["params"]
    ]
    params = [torch.nn.Parameter(torch.zeros_like(raw[n])) for n in adamw]
    for p, n in zip(params, adamw, strict=True):
        p.grad = raw[n].clone()
    assert torch.nn.utils.clip_grad_norm_(params, 1.0) > 1.0
    for name, p in zip(adamw, params, strict=True):
        assert torch.equal(stepped[name], p.grad), name


def test_a_weight_decay_schedule_steps_beside_the_lr_schedule(tmp_path: Path) -> None:
    import math

    decays: dict[int, float] = {}

    class _Decay(L.Callback):  # type: ignore[misc]
        def on_train_batch_end(self, trainer: Any, *_: Any) -> None:
            decays[trainer.global_step] = trainer.optimizers[0].param_groups[0]["weight_decay"]

    class _Scheduled(_Model):
        def configure_optimizers(self) -> Any:
            return configure_optimizers(
                self, "adamw", "cosine", num_warmup_steps=2,
                optimizer_kwargs={"lr": 1e-2, "weight_decay": 0.1},
                weight_decay_scheduler="cosine",
            )  # fmt: skip

    trainer = _trainer(tmp_path, [_Decay()], max_steps=12)
    trainer.fit(_Scheduled("adamw"), _loader())
    assert len(trainer.lr_scheduler_configs) == 2
    for step in range(1, 13):
        expected = step / 2 if step < 2 else 0.5 * (1 + math.cos(math.pi * (step - 2) / 10))
        assert decays[step] == pytest.approx(0.1 * expected, rel=1e-12), step
