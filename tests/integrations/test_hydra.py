"""The real hydra-core: optimizer configs with ``_target_`` reach optreg's classes."""

from __future__ import annotations

import pytest
import torch

import optreg

hydra_utils = pytest.importorskip("hydra.utils")
omegaconf = pytest.importorskip("omegaconf")


def _params() -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.zeros(4, 3)), torch.nn.Parameter(torch.zeros(3))]


def test_a_partial_target_takes_the_parameters_positionally() -> None:
    cfg = omegaconf.OmegaConf.create(
        {"_target_": "optreg.optim.adamw", "_partial_": True, "lr": 3e-4, "betas": [0.9, 0.95]}
    )
    make = hydra_utils.instantiate(cfg)
    opt = make(_params())
    assert type(opt) is torch.optim.AdamW
    assert opt.param_groups[0]["betas"] == (0.9, 0.95)  # a ListConfig, read as torch's tuple
    assert opt.param_groups[0]["fused"] is True  # still fast by default


def test_adafactor_eps_pair_from_a_list_config() -> None:
    cfg = omegaconf.OmegaConf.create(
        {"_target_": "optreg.optim.adafactor", "_partial_": True, "eps": [1e-30, 1e-3]}
    )
    opt = hydra_utils.instantiate(cfg)(_params())
    assert opt.defaults["eps"] == (1e-30, 1e-3)


def test_a_whole_config_through_build() -> None:
    cfg = omegaconf.OmegaConf.create(
        {
            "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
            "scheduler": {"name": "cosine", "num_warmup_steps": 0.1},
            "num_training_steps": 50,
        }
    )
    opt, sched = optreg.build(_params(), cfg)
    assert opt.defaults["momentum"] == 0.9
    assert sched.lr_lambdas[0].keywords["num_warmup_steps"] == 5
