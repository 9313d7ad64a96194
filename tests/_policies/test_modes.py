"""optreg.eval_mode: train/eval modes as a trait of the name (the mechanism; the real
schedule-free package under the Trainer and Lightning: tests/integrations)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import optreg


class TwoPoints(torch.optim.SGD):
    """An optimizer with schedule-free's interface: eval() moves the weights to another
    point and train() back, and each group says its mode."""

    def __init__(self, params: Any, lr: float = 0.1) -> None:
        super().__init__(params, lr=lr)
        for g in self.param_groups:
            g["train_mode"] = True
        self.calls: list[str] = []

    def eval(self) -> None:
        self.calls.append("eval")
        for g in self.param_groups:
            if g["train_mode"]:
                for p in g["params"]:
                    p.data.add_(1.0)
            g["train_mode"] = False

    def train(self) -> None:
        self.calls.append("train")
        for g in self.param_groups:
            if not g["train_mode"]:
                for p in g["params"]:
                    p.data.sub_(1.0)
            g["train_mode"] = True


@pytest.mark.usefixtures("fresh_registry")
def test_eval_mode_switches_a_name_with_the_trait_and_back() -> None:
    optreg.register_optimizer("two_points", TwoPoints, traits=optreg.Traits(train_eval=True))
    assert optreg.optimizer_info("two_points").traits.train_eval
    weight = torch.nn.Parameter(torch.zeros(2))
    opt = optreg.get_optimizer("two_points", [weight])
    with optreg.eval_mode(opt) as same:
        assert same is opt and torch.equal(weight, torch.ones(2))
    assert torch.equal(weight, torch.zeros(2)) and opt.calls == ["eval", "train"]
    opt.eval()  # already in eval mode: left so, and not switched to train after
    with optreg.eval_mode(opt):
        pass
    assert opt.calls == ["eval", "train", "eval"]


@pytest.mark.usefixtures("fresh_registry")
def test_eval_mode_leaves_other_optimizers_alone() -> None:
    weight = torch.nn.Parameter(torch.zeros(2))
    opt = optreg.get_optimizer("adamw", [weight], lr=0.1)
    with optreg.eval_mode(opt):
        pass
    optreg.register_optimizer("plain_points", TwoPoints)  # no trait: the name decides
    plain = optreg.get_optimizer("plain_points", [weight])
    with optreg.eval_mode(plain):
        pass
    assert plain.calls == []
    by_hand = TwoPoints([weight])  # not built by optreg: its interface decides
    with optreg.eval_mode(by_hand):
        assert by_hand.calls == ["eval"]
    assert by_hand.calls == ["eval", "train"]


def test_traits_are_typed() -> None:
    with pytest.raises(TypeError, match=r"Traits.train_eval must be True or False, got 'yes'"):
        optreg.Traits(train_eval="yes")  # type: ignore[arg-type]
    assert optreg.scheduler_info("reduce_lr_on_plateau").traits == optreg.Traits(metric_driven=True)
    assert optreg.Traits(own_lr=True).shown() == [
        "sets its own learning rate (no lr schedule drives it)"
    ]


@pytest.mark.usefixtures("fresh_registry")
def test_a_decaying_schedule_on_a_schedule_free_name_warns_why() -> None:
    optreg.register_optimizer("two_points", TwoPoints, traits=optreg.Traits(train_eval=True))
    opt = optreg.get_optimizer("two_points", [torch.nn.Parameter(torch.zeros(2))])
    with pytest.warns(optreg.ScheduleFightsOptimizerWarning) as caught:
        optreg.get_scheduler("cosine", opt, num_warmup_steps=2, num_training_steps=20)
    assert str(caught[0].message).startswith(
        "schedule 'cosine' decays the lr (to 0 of its peak) of a schedule-free optimizer"
    )
    assert "Use 'constant' or 'constant_with_warmup'" in str(caught[0].message)
    optreg.get_scheduler("constant_with_warmup", opt, num_warmup_steps=2, num_training_steps=20)
    plain = optreg.get_optimizer("sgd", [torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    optreg.get_scheduler("cosine", plain, num_warmup_steps=2, num_training_steps=20)
