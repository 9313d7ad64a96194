"""The real Lightning Trainer with optreg names: one call in configure_optimizers.

Every available builtin optimizer and every schedule is fitted for 20 steps, checkpointed
at step 10 (an epoch's end), resumed with ``fit(ckpt_path=...)`` in a fresh Trainer, and
must match the uninterrupted run exactly (parameters ``torch.equal``, lrs ``==``).

Metric-driven schedules are the exception, Lightning's own: its checkpoint is written at
validation end, before the epoch's plateau step, and a restarted fit skips that step, so
the resumed run is one step behind, with torch's ``ReduceLROnPlateau`` exactly as with
optreg's (test_torch_plateau_resumes_the_same_way). What optreg owes there is tested: the
schedule resumes from exactly the state the checkpoint holds.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import optreg
from optreg.testing import needs

L = pytest.importorskip("lightning")
from optreg.integrations.lightning import configure_optimizers  # noqa: E402

STEPS_PER_EPOCH, EPOCHS = 5, 4
STEPS = STEPS_PER_EPOCH * EPOCHS


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's notes (workers, logging, ...)
        yield


def _loader(seed: int) -> torch.utils.data.DataLoader[Any]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(STEPS_PER_EPOCH * 4, 6, generator=gen)
    y = x.sum(dim=1, keepdim=True).sin()
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4)


class _Model(L.LightningModule):  # type: ignore[misc]
    def __init__(self, optimizer: str, scheduler: str | None, **kwargs: Any) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(6, 8), torch.nn.LayerNorm(8), torch.nn.Tanh(), torch.nn.Linear(8, 1)
        )
        self.choice = (optimizer, scheduler, kwargs)
        self.lrs: dict[int, list[float]] = {}
        self.started_with: dict[str, Any] | None = None

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def on_train_start(self) -> None:
        config = self.trainer.lr_scheduler_configs
        self.started_with = (
            config[0].scheduler.state_dict() if config and config[0].reduce_on_plateau else None
        )

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        groups = self.trainer.optimizers[0].param_groups
        self.lrs[self.trainer.global_step + 1] = [float(g["lr"]) for g in groups]

    def configure_optimizers(self) -> Any:
        optimizer, scheduler, kwargs = self.choice
        return configure_optimizers(self, optimizer, scheduler, **kwargs)


def _fit(tmp_path: Path, model: Any, ckpt: str | None = None) -> Any:
    trainer = L.Trainer(
        max_epochs=EPOCHS,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
        callbacks=[
            L.pytorch.callbacks.ModelCheckpoint(
                dirpath=str(tmp_path), every_n_epochs=1, save_top_k=-1, save_last=False
            )
        ],
    )
    trainer.fit(model, _loader(0), _loader(1), ckpt_path=ckpt)
    assert trainer.global_step == STEPS
    return trainer


def _straight_and_resumed(
    tmp_path: Path, optimizer: str, scheduler: str | None, **kwargs: Any
) -> tuple[Any, Any]:
    straight = _Model(optimizer, scheduler, **kwargs)
    trainer = _fit(tmp_path, straight)
    (ckpt,) = tmp_path.glob(f"epoch=1-step={STEPS // 2}.ckpt")
    resumed = _Model(optimizer, scheduler, **kwargs)
    _fit(tmp_path / "resumed", resumed, str(ckpt))
    assert sorted(resumed.lrs) == list(range(STEPS // 2 + 1, STEPS + 1))
    if resumed.started_with is not None:  # metric-driven: what Lightning does, see below
        saved = torch.load(ckpt, weights_only=False)["lr_schedulers"][0]
        assert resumed.started_with == saved
        return straight, trainer
    assert resumed.lrs == {step: straight.lrs[step] for step in resumed.lrs}
    for (name, a), b in zip(straight.named_parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b), name
    return straight, trainer


def _builtin(names: list[str], registry: Any) -> list[str]:
    """optreg's own names (this env also installs plugins/ adapters)."""
    return [n for n in names if registry.resolve(n).provider == "optreg"]


def _optimizers() -> list[Any]:
    out = []
    for name in _builtin(optreg.list_optimizers(), optreg.optimizers):
        info = optreg.optimizer_info(name)
        need = needs(optreg.optimizers.resolve(name))
        if need.get("sparse_grad"):
            out.append(pytest.param(name, marks=pytest.mark.skip(reason="sparse gradients only")))
        elif need.get("matrices_only") and "adamw" not in name:
            reason = "2-D parameters only: muon_adamw is the name for a whole model"
            out.append(pytest.param(name, marks=pytest.mark.skip(reason=reason)))
        elif not info.available:
            out.append(pytest.param(name, marks=pytest.mark.skip(reason=str(info.reason))))
        else:
            out.append(name)
    return out


@pytest.mark.parametrize("name", _optimizers())
def test_every_optimizer(tmp_path: Path, name: str) -> None:
    kwargs = dict(needs(optreg.optimizers.resolve(name)).get("kwargs", {}))
    kwargs.pop("route", None)  # the kit's bare tensors; a LightningModule has names
    kwargs.setdefault("lr", 1e-2)
    if name == "adafactor":  # an lr to schedule
        kwargs.update(relative_step=False, scale_parameter=False)
    _, trainer = _straight_and_resumed(
        tmp_path, name, "cosine", optimizer_kwargs=kwargs, num_warmup_steps=0.2
    )
    built = optreg.get_optimizer(name, torch.nn.Linear(2, 2), **kwargs)
    assert type(trainer.optimizers[0]) is type(built)
    config = trainer.lr_scheduler_configs[0]
    assert (config.interval, config.frequency, config.reduce_on_plateau) == ("step", 1, False)


@pytest.mark.parametrize("name", _builtin(optreg.list_schedulers(), optreg.schedulers))
def test_every_schedule(tmp_path: Path, name: str) -> None:
    need = needs(optreg.schedulers.resolve(name))
    scheduler_kwargs = dict(need.get("kwargs", {}))
    optimizer, optimizer_kwargs = "adamw", {"lr": 1e-2, "weight_decay": 0.01}
    if name == "adafactor":  # reports the lr Adafactor computes
        optimizer, optimizer_kwargs = "adafactor", {}
    if need.get("metric_driven"):
        scheduler_kwargs["patience"] = 0
    model, trainer = _straight_and_resumed(
        tmp_path,
        optimizer,
        name,
        optimizer_kwargs=optimizer_kwargs,
        scheduler_kwargs=scheduler_kwargs,
        num_warmup_steps=4,
    )
    config = trainer.lr_scheduler_configs[0]
    if need.get("metric_driven"):  # stepped with val_loss once per epoch
        assert (config.interval, config.monitor, config.reduce_on_plateau) == (
            "epoch",
            "val_loss",
            True,
        )
        assert config.scheduler.last_epoch == EPOCHS
    elif name != "adafactor":  # the step count is the trainer's: the schedule of N = 20
        assert config.interval == "step"
        expected = optreg.get_scheduler(
            name,
            torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-2),
            num_warmup_steps=4,
            num_training_steps=STEPS,
            **scheduler_kwargs,
        )
        for step in range(1, STEPS + 1):
            assert model.lrs[step][0] == expected.get_last_lr()[0], step
            expected.optimizer.step()
            expected.step()
    # decayed weights first, then the biases and the LayerNorm weight without decay
    decays = [g["weight_decay"] for g in trainer.optimizers[0].param_groups]
    assert decays == ([0.01, 0.0] if optimizer == "adamw" else decays)


def test_plain_greedy_is_recognised_as_a_plateau_schedule(tmp_path: Path) -> None:
    # no reduce_on_plateau key: Lightning tells it from its type, as it does torch's own
    class Plain(_Model):  # type: ignore[misc]
        def configure_optimizers(self) -> Any:
            opt = optreg.get_optimizer("sgd", self, lr=0.1)
            sched = optreg.get_scheduler("greedy", opt, patience=0, factor=0.5, min_lr=1e-4)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss"}}

    model = Plain("sgd", None)
    trainer = _fit(tmp_path, model)
    config = trainer.lr_scheduler_configs[0]
    assert config.reduce_on_plateau is True
    # stepped with val_loss after each epoch: 0.4222 (better than inf: doubled), 0.4595
    # (worse: halved), 0.3942 (better), 0.3977 (worse)
    assert [model.lrs[1 + 5 * k][0] for k in range(EPOCHS)] == [0.1, 0.2, 0.1, 0.2]
    assert config.scheduler.last_epoch == EPOCHS
    assert trainer.optimizers[0].param_groups[0]["lr"] == 0.1


def test_no_schedule_and_an_unbounded_run(tmp_path: Path) -> None:
    model = _Model("sgd", None)
    out = configure_optimizers(model, "sgd", optimizer_kwargs={"lr": 0.1})
    assert set(out) == {"optimizer"}
    with pytest.raises(ValueError, match=r"'cosine' needs num_training_steps: pass it"):
        configure_optimizers(model, "sgd", "cosine", num_warmup_steps=0)
    out = configure_optimizers(model, "sgd", "cosine", num_warmup_steps=0, num_training_steps=10)
    assert out["lr_scheduler"]["scheduler"].lr_lambdas[0](10) == 0.0
    with pytest.raises(ValueError, match=r"`interval` must be 'step' or 'epoch', got 'batch'"):
        configure_optimizers(model, "sgd", "constant", interval="batch")
    with pytest.raises(ValueError, match=r"`frequency` must be an int >= 1, got 0"):
        configure_optimizers(model, "sgd", "constant", frequency=0)


def test_an_unbounded_trainer_says_so(tmp_path: Path) -> None:
    model = _Model("sgd", "cosine", num_warmup_steps=0)
    trainer = L.Trainer(max_epochs=-1, logger=False, enable_progress_bar=False)
    model.trainer = trainer
    with pytest.raises(ValueError, match=r"runs without a bound \(estimated_stepping_batches=inf"):
        model.configure_optimizers()


def test_torch_plateau_resumes_the_same_way(tmp_path: Path) -> None:
    # The reference for the metric-driven exception above: torch's own ReduceLROnPlateau
    # under Lightning resumes one plateau step behind, and optreg's resumes identically.
    class Torch(_Model):  # type: ignore[misc]
        def configure_optimizers(self) -> Any:
            opt = torch.optim.SGD(self.parameters(), lr=0.01)
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss"}}

    runs = []
    for cls, args in ((Torch, ("sgd", None)), (_Model, ("sgd", "reduce_lr_on_plateau"))):
        kwargs = (
            {}
            if cls is Torch
            else {"optimizer_kwargs": {"lr": 0.01}, "scheduler_kwargs": {"patience": 0}}
        )
        straight = cls(*args, **kwargs)
        _fit(tmp_path / cls.__name__, straight)
        (ckpt,) = (tmp_path / cls.__name__).glob("epoch=1-step=10.ckpt")
        resumed = cls(*args, **kwargs)
        _fit(tmp_path / cls.__name__ / "resumed", resumed, str(ckpt))
        runs.append((straight.lrs, resumed.lrs))
    (torch_straight, torch_resumed), (ours_straight, ours_resumed) = runs
    assert ours_straight == torch_straight and ours_resumed == torch_resumed
    assert torch_resumed[11] != torch_straight[11]  # Lightning's gap, not optreg's


def test_lightning_cli_class_path(tmp_path: Path) -> None:
    # jsonargparse reads the class's parameters (from its __new__ / __init__ signature)
    cli_module = pytest.importorskip("lightning.pytorch.cli")
    pytest.importorskip("jsonargparse")

    class Tiny(L.LightningModule):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(6, 1)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            return torch.nn.functional.mse_loss(self.net(x), y)

        def train_dataloader(self) -> Any:
            return _loader(0)

    cli = cli_module.LightningCLI(
        Tiny,
        run=False,
        save_config_callback=None,
        args=[
            "--optimizer=optreg.optim.adamw",
            "--optimizer.lr=0.01",
            "--optimizer.betas=[0.9, 0.95]",
            "--optimizer.weight_decay=0.05",
            "--trainer.max_steps=3",
            "--trainer.logger=false",
            "--trainer.enable_checkpointing=false",
            "--trainer.enable_progress_bar=false",
            f"--trainer.default_root_dir={tmp_path}",
        ],
    )
    assert cli.config.optimizer.class_path == "optreg.optim.adamw"
    cli.trainer.fit(cli.model)
    (opt,) = cli.trainer.optimizers
    assert type(opt) is torch.optim.AdamW and opt.defaults["fused"] is True
    assert opt.param_groups[0]["betas"] == (0.9, 0.95)
    assert opt.param_groups[0]["weight_decay"] == 0.05
    with pytest.raises(SystemExit):  # jsonargparse's own error: 'lrr' is not accepted
        cli_module.LightningCLI(
            Tiny, run=False, args=["--optimizer=optreg.optim.adamw", "--optimizer.lrr=0.01"]
        )


class _Halving(torch.optim.lr_scheduler.ReduceLROnPlateau):
    """A plugin's metric-driven schedule, with no metadata saying so: halves the lr at
    every step it is given a metric."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        super().__init__(optimizer, factor=0.5, patience=0, threshold=float("inf"))
        self.seen: list[float] = []

    def step(self, metrics: float, epoch: int | None = None) -> None:  # type: ignore[override]
        self.seen.append(float(metrics))
        super().step(metrics)


def test_a_plugins_metric_driven_schedule_is_told_from_its_step(
    tmp_path: Path, fresh_registry: None
) -> None:
    optreg.register_scheduler("halving", _Halving)  # no metadata
    model = _Model("sgd", "halving", optimizer_kwargs={"lr": 0.1}, monitor="val_loss")
    trainer = _fit(tmp_path, model)
    config = trainer.lr_scheduler_configs[0]
    assert (config.interval, config.monitor, config.reduce_on_plateau) == (
        "epoch",
        "val_loss",
        True,
    )
    assert len(config.scheduler.seen) == EPOCHS  # stepped with val_loss once per epoch
