"""optreg.optim: every optimizer name as a real torch.optim.Optimizer subclass."""

from __future__ import annotations

import functools
import inspect
import pickle
import warnings

import pytest
import torch

import optreg
import optreg.optim
from optreg.testing import needs

pytestmark = pytest.mark.usefixtures("fresh_registry")

NAMES = optreg.list_optimizers()


def _params(*, matrices: bool = False) -> list[torch.nn.Parameter]:
    torch.manual_seed(0)
    bias = torch.randn(1, 80) if matrices else torch.randn(80)  # muon: 2-D only
    return [torch.nn.Parameter(torch.randn(64, 80)), torch.nn.Parameter(bias)]


@pytest.mark.parametrize("name", NAMES)
def test_every_name_is_an_optimizer_class_that_builds_what_get_optimizer_builds(name: str) -> None:
    entry = optreg.optimizers[name]
    if not optreg.optimizers.status(entry)[0]:
        with pytest.raises(optreg.MissingDependencyError):
            optreg.get_optimizer_cls(name)
        return
    cls = optreg.get_optimizer_cls(name)
    assert issubclass(cls, torch.optim.Optimizer)
    assert cls is getattr(optreg.optim, name)
    kwargs = dict(needs(entry).get("kwargs") or {})
    if "lr" not in kwargs and optreg._core.signature.requires(optreg.optimizers.load(entry), "lr"):
        kwargs["lr"] = 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optreg.PagedFallbackWarning)
        matrices = bool(needs(entry).get("matrices_only"))
        built = cls(_params(matrices=matrices), **kwargs)
        direct = optreg.get_optimizer(name, _params(matrices=matrices), **kwargs)
    assert type(built) is type(direct)
    assert built.defaults == direct.defaults
    assert pickle.loads(pickle.dumps(cls)) is cls  # by reference


def test_adamw_stays_a_fast_by_default_torch_adamw() -> None:
    opt = optreg.optim.adamw(_params(), lr=0.1)
    assert type(opt) is torch.optim.AdamW and opt.param_groups[0]["fused"] is True


def test_the_same_errors_as_get_optimizer() -> None:
    for call in (optreg.optim.sgd, functools.partial(optreg.get_optimizer, "sgd")):
        with pytest.raises(TypeError, match="did you mean 'lr'"):
            call(_params(), lrr=0.1)
    with pytest.raises(ValueError, match="^Invalid learning rate: -1.0$"):
        optreg.optim.sgd(_params(), lr=-1.0)


def test_the_signature_is_the_factorys_and_positional_hyperparameters_work() -> None:
    sig = inspect.signature(optreg.optim.sgd)
    assert list(sig.parameters)[:3] == ["params", "lr", "momentum"]
    # jsonargparse (a Lightning CLI class_path) reads __new__ / __init__, not the class
    for method, first in ((optreg.optim.sgd.__new__, "cls"), (optreg.optim.sgd.__init__, "self")):
        assert list(inspect.signature(method).parameters)[:3] == [first, "params", "lr"]
    opt = optreg.optim.sgd(_params(), 0.5, 0.9)  # as torch.optim.SGD(params, 0.5, 0.9)
    assert (opt.defaults["lr"], opt.defaults["momentum"]) == (0.5, 0.9)
    with pytest.raises(TypeError, match="got multiple values for 'lr'"):
        optreg.optim.sgd(_params(), 0.5, lr=0.1)


def test_a_hydra_style_partial_with_list_betas() -> None:
    """What hydra.utils.instantiate({"_target_": "optreg.optim.adamw", "_partial_": True,
    "betas": [0.9, 0.95]}) returns: a partial called with the parameters positionally."""
    make = functools.partial(optreg.optim.adamw, lr=3e-4, betas=[0.9, 0.95])
    opt = make(_params())
    assert opt.param_groups[0]["betas"] == (0.9, 0.95)


def test_qualified_names_get_their_own_class() -> None:
    optreg.register_optimizer("mine", torch.optim.SGD)
    cls = optreg.get_optimizer_cls("mine")
    assert cls.__qualname__ == "mine" and issubclass(cls, torch.optim.Optimizer)
    assert type(cls(_params(), lr=0.1)) is torch.optim.SGD
    with pytest.raises(AttributeError, match="no attribute 'adamx'.*did you mean"):
        optreg.optim.adamx  # noqa: B018
    assert "adamw" in dir(optreg.optim)


def test_a_schedule_on_an_optimizer_without_a_numeric_lr_is_refused() -> None:
    opt = optreg.get_optimizer("adafactor", _params())  # relative_step=True: lr is None
    with pytest.raises(ValueError) as info:
        optreg.get_scheduler("cosine", opt, num_warmup_steps=1, num_training_steps=10)
    assert str(info.value).startswith(
        "cosine cannot schedule Adafactor: param group 0 has lr=None, so there is no learning "
        "rate to scale"
    )
    assert str(info.value).endswith(
        "Build it with a numeric lr (`optreg info adafactor` lists the options that give it "
        "one), or use a schedule that reports the lr it computes: 'adafactor'"
    )
    assert optreg.get_scheduler("adafactor", opt) is not None  # the schedule made for it


def test_a_class_refuses_surplus_positionals_as_torch_does() -> None:
    """Seven positionals would have set the keyword-only ``maximize`` (torch raises)."""
    import torch

    import optreg.optim

    p = [torch.nn.Parameter(torch.zeros(2))]
    with pytest.raises(TypeError, match=r"adamw\(\) takes at most 6 positional arguments, got 7"):
        optreg.optim.adamw(p, 1e-3, (0.9, 0.999), 1e-8, 0.01, False, True)
    assert (
        optreg.optim.adamw(p, 1e-3, (0.9, 0.999), 1e-8, 0.01, False).defaults["maximize"] is False
    )
