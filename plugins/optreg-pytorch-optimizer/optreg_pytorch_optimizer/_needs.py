"""What optreg.testing's conformance checks need for some pytorch_optimizer names.

Each value becomes the entry's ``metadata["conformance"]`` (see optreg.testing).
Reasons are stated as found with pytorch_optimizer 4.1.0: a ``skip_checks`` entry
marks a contract check an upstream optimizer does not meet, on purpose or not.
"""

from __future__ import annotations

from typing import Any

#: built by optreg_pytorch_optimizer.muon, which gives every group its use_muon flag
MUON_FAMILY = frozenset({"adago", "adamuon", "distributedmuon", "muon", "muonclip", "normuon"})
# the kit's problem holds matrices only: bare tensors are routed by shape, and a 1-D one
# would make a second (AdamW) group where the kit expects one
_MUON: dict[str, Any] = {"matrices_only": True}
#: built by optreg_pytorch_optimizer.model, which hands them the nn.Module
TAKES_MODEL = frozenset({"adalomo", "adammini", "lomo"})
_MODULE = (
    "takes the nn.Module (get_optimizer(name, model) hands it over), and the kit builds "
    "optimizers from tensors"
)
_FUSED = (
    "; and it trains through optimizer.fused_backward(loss, lr), so step() is not its "
    "update (tests/test_pytorch_optimizer_plugin.py trains it that way)"
)
_FIRST_GROUP_LR = (
    "upstream: the adaptive step size uses param_groups[0]['lr'] for every group "
    "(as in the D-Adaptation / Prodigy reference code)"
)
_NOT_WEIGHTS_ONLY = (
    "upstream: state_dict() holds objects that torch.load(weights_only=True) refuses"
)

OPTIMIZER_NEEDS: dict[str, dict[str, Any]] = {
    # relative_step=True (the default) computes its own step size and ignores lr
    "adafactor": {"skip_checks": {"per_group_lr": "relative_step=True ignores lr by design"}},
    "adago": _MUON,
    "adamuon": _MUON,
    "distributedmuon": {
        **_MUON,
        "skip": "DistributedMuon is built only inside torch.distributed: construction raises "
        "'Default process group has not been initialized' without init_process_group",
    },
    "muon": _MUON,
    "muonclip": _MUON,
    "normuon": _MUON,
    "adalomo": {"skip": _MODULE + _FUSED},
    "adammini": {"skip": _MODULE},
    "lomo": {"skip": _MODULE + _FUSED},
    "adahessian": {"create_graph": True},
    "sophiah": {"create_graph": True},
    # keeps keep_num gradients before its first update
    "adashift": {
        "kwargs": {"keep_num": 1},
        "skip_checks": {"resume_bit_identical": _NOT_WEIGHTS_ONLY},
    },
    "apollodqn": {
        "skip_checks": {
            "per_group_lr": "upstream: every group gets the same update whatever its own 'lr'"
        }
    },
    "alig": {"requires_closure": True},
    # bSAM needs the training-set size and a closure
    "bsam": {"kwargs": {"num_data": 8}, "requires_closure": True},
    "sara": {
        "skip": "fine-tunes only the weights of a pretrained model below `threshold`; on the "
        "conformance problem the loss stays unchanged (even with threshold=10)"
    },
    "splus": {
        "skip_checks": {
            "resume_bit_identical": "upstream: eval() raises KeyError('ema') when a parameter "
            "never had a gradient"
        }
    },
    "conda": {"skip_checks": {"resume_bit_identical": _NOT_WEIGHTS_ONLY}},
    "scalableshampoo": {"skip_checks": {"resume_bit_identical": _NOT_WEIGHTS_ONLY}},
    "scion": {"skip_checks": {"resume_bit_identical": _NOT_WEIGHTS_ONLY}},
    "scionlight": {"skip_checks": {"resume_bit_identical": _NOT_WEIGHTS_ONLY}},
    "dadaptadagrad": {"skip_checks": {"per_group_lr": _FIRST_GROUP_LR}},
    # with lr=1.0 (their default) the estimated step size overshoots this tiny problem:
    # the loss rises in 20 steps; lr=0.5 descends
    "dadaptadam": {"kwargs": {"lr": 0.5}, "skip_checks": {"per_group_lr": _FIRST_GROUP_LR}},
    "dadaptadan": {"kwargs": {"lr": 0.5}, "skip_checks": {"per_group_lr": _FIRST_GROUP_LR}},
    "dadaptlion": {"skip_checks": {"per_group_lr": _FIRST_GROUP_LR}},
    "dadaptsgd": {"skip_checks": {"per_group_lr": _FIRST_GROUP_LR}},
    "prodigy": {"skip_checks": {"per_group_lr": _FIRST_GROUP_LR}},
    "lbfgs": {"requires_closure": True, "param_groups": False},
    # available once einops is installed (other adapters' libraries install it)
    "demo": {
        "skip": "DeMo steps only inside torch.distributed: step() raises 'Default process "
        "group has not been initialized' without init_process_group"
    },
    "lorarite": {"skip": "expects LoRA factor matrices (pairs of low-rank parameters)"},
    "spectralsphere": {"matrices_only": True},  # 2-D parameters only
    # projects weights onto per-neuron constraints: not a descent method on this problem
    "nero": {"kwargs": {"constraints": False}},
    # RAdam-style rectification skips the first updates unless degenerated_to_sgd
    "radam": {"kwargs": {"degenerated_to_sgd": True}},
    "ranger": {"kwargs": {"degenerated_to_sgd": True}},
    "ranger21": {"kwargs": {"num_iterations": 100}},
    "schedulefreeradam": {"kwargs": {"silent_sgd_phase": False}},
}


def _constant_factor(epoch: int) -> float:
    """``lr_lambda`` for MultiplicativeLR: multiply the lr by 0.95 every step."""
    return 0.95


_NO_STATE_DICT = (
    "upstream: not a torch LRScheduler, it has no state_dict() / load_state_dict(), so a "
    "run using it cannot be resumed"
)
_WARMUP_LINEAR = {"t_max": 20, "max_lr": 0.1, "min_lr": 0.001, "warmup_steps": 3}

SCHEDULER_NEEDS: dict[str, dict[str, Any]] = {
    "chebyshev": {
        "kwargs": {"num_epochs": 20},
        "skip_checks": {
            "resume_bit_identical": "upstream: the schedule sets numpy.float64 learning "
            "rates, which torch.load(weights_only=True) refuses in the optimizer's state_dict"
        },
    },
    "cosine": {"kwargs": _WARMUP_LINEAR, "skip_checks": {"resume_bit_identical": _NO_STATE_DICT}},
    # upstream: LinearScheduler's lr goes negative past t_max, so t_max covers the whole run
    "linear": {
        "kwargs": {**_WARMUP_LINEAR, "t_max": 30},
        "skip_checks": {"resume_bit_identical": _NO_STATE_DICT},
    },
    "poly": {"kwargs": _WARMUP_LINEAR, "skip_checks": {"resume_bit_identical": _NO_STATE_DICT}},
    "cosine_annealing": {"kwargs": {"T_max": 20}},
    "cosine_annealing_with_warm_restart": {"kwargs": {"T_0": 10}},
    "cosine_annealing_with_warmup": {
        "kwargs": {"first_cycle_steps": 10, "max_lr": 0.1, "min_lr": 0.001, "warmup_steps": 3}
    },
    "cyclic": {
        "kwargs": {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 5, "cycle_momentum": False}
    },
    "multi_step": {"kwargs": {"milestones": [5, 10]}},
    "multiplicative": {"kwargs": {"lr_lambda": _constant_factor}},
    "one_cycle": {"kwargs": {"max_lr": 0.1, "total_steps": 30, "cycle_momentum": False}},
    "rex": {"kwargs": {"total_steps": 30, "max_lr": 0.1}},
    "step": {"kwargs": {"step_size": 5}},
    "warmup_stable_decay": {"kwargs": {"num_stable_steps": 10, "num_decay_steps": 7}},
}

#: Extra top-level modules some optimizers import (checked without importing them).
REQUIRES: dict[str, tuple[str, ...]] = {"demo": ("einops",)}

#: Names pytorch_optimizer lists that are not optreg factories; not registered.
NOT_REGISTERED: dict[tuple[str, str], str] = {
    ("scheduler", "proportion"): (
        "ProportionScheduler wraps another LR scheduler (its first argument is "
        "lr_scheduler, not an optimizer); build it from pytorch_optimizer directly"
    ),
}
