"""bitsandbytes names: registration, laziness, state dtypes, parity, overrides, resume.

Tests that build an optimizer need bitsandbytes and are skipped without it (tox env
``nobnb``); the registration and missing-dependency tests run in both environments.
"""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch
from helpers import pickle_round_trip
from torch import nn

import optreg
from optreg import MissingDependencyError
from optreg.builtin import bnb as optreg_bnb

pytestmark = pytest.mark.usefixtures("fresh_registry")

HAVE_BNB = importlib.util.find_spec("bitsandbytes") is not None
needs_bnb = pytest.mark.skipif(not HAVE_BNB, reason="bitsandbytes is not installed")
INSTALL_HINT = 'pip install "optreg[bnb]"'

#: name -> (aliases, state bits, paged), as DESIGN.md lists them.
NAMES: dict[str, tuple[tuple[str, ...], int, bool]] = {
    "adamw_8bit": (("adamw_bnb_8bit",), 8, False),
    "adam_8bit": ((), 8, False),
    "paged_adamw_32bit": (("paged_adamw",), 32, True),
    "paged_adamw_8bit": ((), 8, True),
    "paged_adam_8bit": ((), 8, True),
    "lion_8bit": ((), 8, False),
    "lion_32bit": ((), 32, False),
    "paged_lion_8bit": ((), 8, True),
    "paged_lion_32bit": ((), 32, True),
    "rmsprop_bnb": ((), 32, False),
    "rmsprop_bnb_8bit": ((), 8, False),
    "rmsprop_bnb_32bit": ((), 32, False),
    "sgd_8bit": ((), 8, False),
    "adagrad_8bit": ((), 8, False),
    "lamb_8bit": ((), 8, False),
    "lars_8bit": ((), 8, False),
    "ademamix": ((), 32, False),
    "ademamix_8bit": ((), 8, False),
    "paged_ademamix_32bit": ((), 32, True),
    "paged_ademamix_8bit": ((), 8, True),
}

#: The reference each name must equal: the generic bitsandbytes class with explicit
#: optim_bits / is_paged (how transformers builds its bnb names).
REFERENCE: dict[str, tuple[str, dict[str, Any]]] = {
    "adamw_8bit": ("AdamW", {"optim_bits": 8}),
    "adam_8bit": ("Adam", {"optim_bits": 8}),
    "paged_adamw_32bit": ("AdamW", {"optim_bits": 32, "is_paged": True}),
    "paged_adamw_8bit": ("AdamW", {"optim_bits": 8, "is_paged": True}),
    "paged_adam_8bit": ("Adam", {"optim_bits": 8, "is_paged": True}),
    "lion_8bit": ("Lion", {"optim_bits": 8}),
    "lion_32bit": ("Lion", {"optim_bits": 32}),
    "paged_lion_8bit": ("Lion", {"optim_bits": 8, "is_paged": True}),
    "paged_lion_32bit": ("Lion", {"optim_bits": 32, "is_paged": True}),
    "rmsprop_bnb": ("RMSprop", {"optim_bits": 32}),
    "rmsprop_bnb_8bit": ("RMSprop", {"optim_bits": 8}),
    "rmsprop_bnb_32bit": ("RMSprop", {"optim_bits": 32}),
    "sgd_8bit": ("SGD", {"optim_bits": 8}),
    "adagrad_8bit": ("Adagrad", {"optim_bits": 8}),
    "lamb_8bit": ("LAMB", {"optim_bits": 8}),
    "lars_8bit": ("LARS", {"optim_bits": 8}),
    "ademamix": ("AdEMAMix", {"optim_bits": 32}),
    "ademamix_8bit": ("AdEMAMix", {"optim_bits": 8}),
    "paged_ademamix_32bit": ("AdEMAMix", {"optim_bits": 32, "is_paged": True}),
    "paged_ademamix_8bit": ("AdEMAMix", {"optim_bits": 8, "is_paged": True}),
}

#: Hyperparameters per name (bnb's SGD and LARS refuse momentum=0).
KWARGS: dict[str, dict[str, Any]] = {
    "sgd_8bit": {"lr": 1e-2, "momentum": 0.9},
    "lars_8bit": {"lr": 1e-2, "momentum": 0.9},
    "lion_8bit": {"lr": 1e-4, "weight_decay": 0.1},
    "adamw_8bit": {"lr": 1e-3, "weight_decay": 0.05, "betas": (0.8, 0.95)},
}


def kwargs_for(name: str) -> dict[str, Any]:
    return dict(KWARGS.get(name, {"lr": 1e-3}))


@pytest.fixture
def paged_note_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend optreg already said the paged-on-CPU note in this process."""
    monkeypatch.setattr(optreg_bnb._Once, "shown", True)


@pytest.fixture
def paged_note_fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend optreg has not said the paged-on-CPU note yet."""
    monkeypatch.setattr(optreg_bnb._Once, "shown", False)


@contextmanager
def bnb_paged_warning_ignored() -> Iterator[None]:
    """bitsandbytes' own once-per-optimizer warning, for reference optimizers built directly."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Paged optimizers are not supported on CPU")
        yield


def make_params(*shapes: tuple[int, ...], seed: int = 0) -> list[nn.Parameter]:
    gen = torch.Generator().manual_seed(seed)
    return [nn.Parameter(torch.randn(*s, generator=gen)) for s in shapes]


def clone(params: list[nn.Parameter]) -> list[nn.Parameter]:
    return [nn.Parameter(p.detach().clone()) for p in params]


def set_grads(params: list[torch.Tensor], step: int) -> None:
    gen = torch.Generator().manual_seed(1000 + step)
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen)


def run(opt: Any, params: list[torch.Tensor], steps: range) -> None:
    for s in steps:
        set_grads(params, s)
        opt.step()


def state_tensors(opt: Any, p: torch.Tensor) -> dict[str, torch.Tensor]:
    return {k: v for k, v in opt.state[p].items() if isinstance(v, torch.Tensor)}


# --------------------------------------------------------------------------- registration


def test_every_name_is_registered_lazily() -> None:
    entries = {e.name: e for e in optreg.optimizers.entries() if e.provider == "optreg"}
    for name, (aliases, bits, paged) in NAMES.items():
        entry = entries[name]
        assert entry.target == f"optreg.builtin.bnb:{name}"
        assert entry.aliases == aliases
        assert entry.requires == ("bitsandbytes",)
        assert entry.extra == "bnb"
        assert entry.description.endswith(")") and "bitsandbytes" in entry.description
        assert entry.metadata["state_bits"] == bits
        assert entry.metadata["paged"] is paged
        for alias in aliases:
            assert optreg.optimizers.resolve(alias) is entry
    bnb_names = {n for n, e in entries.items() if e.target_ref.startswith("optreg.builtin.bnb:")}
    assert bnb_names == set(NAMES)
    assert set(optreg_bnb.FACTORIES) == set(NAMES)


def test_listing_and_resolving_do_not_import_bitsandbytes() -> None:
    code = textwrap.dedent(
        """
        import json, sys, warnings
        import torch, optreg
        names = optreg.list_optimizers()
        status = {n: optreg.optimizers.status(optreg.optimizers.resolve(n)) for n in names}
        error = None
        try:
            optreg.get_optimizer_cls("paged_adamw_8bit")
        except optreg.MissingDependencyError as e:
            error = str(e)
        before = "bitsandbytes" in sys.modules
        with warnings.catch_warnings(record=True):
            try:
                optreg.get_optimizer("adamw_8bit", [torch.nn.Parameter(torch.zeros(2))])
            except optreg.MissingDependencyError as e:
                error += " | " + str(e)
        print(json.dumps({"names": names, "status": status, "before": before,
                          "after": "bitsandbytes" in sys.modules, "error": error}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout)
    assert set(NAMES) <= set(result["names"])
    assert result["before"] is False  # listing, status and get_optimizer_cls import nothing
    assert result["after"] is HAVE_BNB
    assert all(result["status"][n][0] is HAVE_BNB for n in NAMES)
    if HAVE_BNB:
        assert result["error"] is None
    else:
        assert result["error"].count(INSTALL_HINT) == 2  # get_optimizer_cls and get_optimizer


# --------------------------------------------------------------------------- missing dependency


def _assert_unavailable() -> None:
    names = optreg.list_optimizers()
    for name in NAMES:
        assert name in names
        info = optreg.optimizer_info(name)
        assert info.available is False
        assert info.reason is not None and INSTALL_HINT in info.reason
        assert "bitsandbytes" in info.reason
    params = [nn.Parameter(torch.zeros(3))]
    with pytest.raises(MissingDependencyError, match=r'pip install "optreg\[bnb\]"') as exc:
        optreg.get_optimizer("adamw_8bit", params, lr=1e-3)
    assert "'adamw_8bit' needs bitsandbytes" in str(exc.value)
    with pytest.raises(MissingDependencyError, match=r'pip install "optreg\[bnb\]"'):
        optreg.get_optimizer_cls("paged_adamw")  # an alias
    # the factory object itself (e.g. kept from before) says the same
    with pytest.raises(MissingDependencyError, match=r'pip install "optreg\[bnb\]"'):
        optreg_bnb.lion_8bit(params)


def test_without_bitsandbytes_names_are_listed_but_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # None in sys.modules is the import system's "not importable" marker: find_spec()
    # returns None and `import bitsandbytes` raises ModuleNotFoundError
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)
    _assert_unavailable()


def test_without_bitsandbytes_in_a_fresh_process() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["bitsandbytes"] = None  # before optreg or torch is imported
        import json, torch, optreg
        from optreg.builtin import bnb
        out = {}
        for name in bnb.FACTORIES:
            info = optreg.optimizer_info(name)
            out[name] = [name in optreg.list_optimizers(), info.available, info.reason]
        try:
            optreg.get_optimizer("paged_lion_8bit", [torch.nn.Parameter(torch.zeros(2))])
        except optreg.MissingDependencyError as e:
            out["error"] = str(e)
        print(json.dumps(out))
        """
    )
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout)
    for name in NAMES:
        listed, available, reason = result[name]
        assert listed is True and available is False
        assert reason == (
            f"optimizer {name!r} needs bitsandbytes, which is not installed; "
            f"install it with: {INSTALL_HINT}"
        )
    assert INSTALL_HINT in result["error"] and "'paged_lion_8bit'" in result["error"]


@pytest.mark.skipif(HAVE_BNB, reason="checks an environment without bitsandbytes (tox -e nobnb)")
def test_really_without_bitsandbytes() -> None:
    _assert_unavailable()


# --------------------------------------------------------------------------- what each name builds


@needs_bnb
@pytest.mark.parametrize("name", sorted(NAMES))
@pytest.mark.usefixtures("paged_note_shown")
def test_state_dtypes(name: str) -> None:
    _, bits, paged = NAMES[name]
    at_min, below_min, tiny = make_params((64, 64), (4095,), (7,))
    opt = optreg.get_optimizer(name, [at_min, below_min, tiny], **kwargs_for(name))
    run(opt, [at_min, below_min, tiny], range(2))
    assert opt.is_paged is paged
    assert opt.args.optim_bits == bits
    assert opt.args.min_8bit_size == 4096
    big = state_tensors(opt, at_min)
    keys = [k for k in ("state1", "state2") if k in big]
    assert keys[0] == "state1"
    expected = torch.uint8 if bits == 8 else torch.float32
    for key in keys:
        assert big[key].dtype == expected, (name, key, big[key].dtype)
    if bits == 8:
        assert big["absmax1"].dtype == torch.float32
    for small in (below_min, tiny):
        for key in keys:
            assert state_tensors(opt, small)[key].dtype == torch.float32, (name, key)


@needs_bnb
@pytest.mark.parametrize("name", sorted(NAMES))
@pytest.mark.usefixtures("paged_note_shown")
def test_same_as_bitsandbytes_directly(name: str) -> None:
    import bitsandbytes.optim as bnb_optim

    cls_name, flags = REFERENCE[name]
    params = make_params((64, 80), (80,))
    ref_params, initial = clone(params), clone(params)
    opt = optreg.get_optimizer(name, params, **kwargs_for(name))
    with bnb_paged_warning_ignored():
        ref = getattr(bnb_optim, cls_name)(ref_params, **flags, **kwargs_for(name))
        run(ref, ref_params, range(20))
    run(opt, params, range(20))
    assert isinstance(opt, torch.optim.Optimizer)
    for p, q, p0 in zip(params, ref_params, initial, strict=True):
        assert not torch.equal(p, p0), f"{name}: 20 steps did not move a parameter"
        assert torch.equal(p, q), f"{name}: max abs diff {(p - q).abs().max().item():.3g}"
        mine, theirs = state_tensors(opt, p), state_tensors(ref, q)
        assert mine.keys() == theirs.keys()
        for key in mine:
            assert torch.equal(mine[key], theirs[key]), (name, key)


@needs_bnb
def test_classes_are_bitsandbytes_own() -> None:
    import bitsandbytes.optim as bnb_optim

    expected = {
        "adamw_8bit": "AdamW8bit", "paged_adamw_32bit": "PagedAdamW32bit",
        "paged_adamw_8bit": "PagedAdamW8bit", "lion_8bit": "Lion8bit",
        "rmsprop_bnb": "RMSprop32bit", "ademamix": "AdEMAMix",
        "ademamix_8bit": "AdEMAMix8bit",
    }  # fmt: skip
    for name, cls_name in expected.items():
        assert optreg_bnb.FACTORIES[name].optimizer_class() is getattr(bnb_optim, cls_name)
    # the paged AdEMAMix names: bitsandbytes' class, with CPU-safe state buffers
    for name, base in (
        ("paged_ademamix_8bit", bnb_optim.PagedAdEMAMix8bit),
        ("paged_ademamix_32bit", bnb_optim.PagedAdEMAMix),
    ):
        cls = optreg_bnb.FACTORIES[name].optimizer_class()
        assert cls.__bases__ == (base,) and cls.__name__ == base.__name__


@needs_bnb
@pytest.mark.parametrize(
    ("name", "reference"),
    [("paged_ademamix_8bit", "AdEMAMix8bit"), ("paged_ademamix_32bit", "AdEMAMix")],
)
@pytest.mark.usefixtures("paged_note_shown")
def test_paged_ademamix_with_large_cpu_parameters(name: str, reference: str) -> None:
    # bitsandbytes 0.50.2 asks CUDA for paged memory for CPU tensors of >= 1e5
    # elements here; optreg's subclass gives them ordinary state, as non-paged AdEMAMix
    import bitsandbytes.optim as bnb_optim

    params = make_params((320, 320))
    ref_params = clone(params)
    opt = optreg.get_optimizer(name, params, lr=1e-3)
    ref = getattr(bnb_optim, reference)(ref_params, lr=1e-3)
    run(opt, params, range(5))
    run(ref, ref_params, range(5))
    assert torch.equal(params[0], ref_params[0])
    assert state_tensors(opt, params[0])["state1"].shape == (2, 320, 320)


# --------------------------------------------------------------------------- paged on CPU


@needs_bnb
@pytest.mark.usefixtures("paged_note_fresh")
def test_paged_on_cpu_is_said_once_per_process() -> None:
    params = make_params((64, 80), (80,))
    with warnings.catch_warnings(record=True) as first:
        warnings.simplefilter("always")
        opt = optreg.get_optimizer("paged_adamw_8bit", params, lr=1e-3)
    assert [w.category for w in first] == [optreg_bnb.PagedFallbackWarning]
    message = str(first[0].message)
    assert message.startswith("paged_adamw_8bit: paged optimizers are not supported on CPU")
    assert "non-paged" in message and "once per process" in message
    assert first[0].filename == __file__  # points at the caller, not at optreg

    with warnings.catch_warnings(record=True) as later:
        warnings.simplefilter("always")
        run(opt, params, range(10))  # bitsandbytes would warn at the first step
        again = optreg.get_optimizer("paged_lion_32bit", params, lr=1e-4)
        run(again, params, range(10))
        third = optreg.get_optimizer_cls("paged_ademamix_8bit")(params)
        run(third, params, range(3))
    assert [str(w.message) for w in later] == []
    assert opt.is_paged and again.is_paged and third.is_paged


@needs_bnb
@pytest.mark.usefixtures("paged_note_fresh")
def test_non_paged_names_say_nothing() -> None:
    params = make_params((64, 80))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        opt = optreg.get_optimizer("adamw_8bit", params, lr=1e-3)
        run(opt, params, range(3))
    assert caught == []
    assert optreg_bnb._Once.shown is False


# --------------------------------------------------------------------------- keywords


@needs_bnb
@pytest.mark.parametrize(
    ("name", "kwargs", "error", "pattern"),
    [
        # the name's own message: it fixes these (get_optimizer lets the factory say so)
        (
            "adamw_8bit",
            {"optim_bits": 32},
            TypeError,
            r"'adamw_8bit' fixes 'optim_bits' \(it is 8-bit, not paged\)",
        ),
        ("adamw_8bit", {"is_paged": True}, TypeError, r"'adamw_8bit' fixes 'is_paged'"),
        (
            "lion_32bit",
            {"args": object()},
            TypeError,
            r"'lion_32bit' fixes 'args' \(it is 32-bit, not paged\)",
        ),
        ("adamw_8bit", {"lrr": 1e-3}, TypeError, "did you mean 'lr'"),
        ("adamw_8bit", {"lr": -1.0}, ValueError, r"lr.*-1\.0"),
        (
            "sgd_8bit",
            {"lr": 0.1},
            ValueError,
            r"^optimizer 'sgd_8bit' \(bitsandbytes.optim.SGD8bit\) does not support these "
            r"settings: SGD without momentum is not supported! \(got lr=0.1\)$",
        ),
        (
            "rmsprop_bnb",
            {"lr": 0.1, "centered": True},
            ValueError,
            r"does not support these settings: .*\(got lr=0.1, centered=True\)$",
        ),
        (
            "adam_8bit",
            {"betas": (0.9, 1.5)},
            ValueError,
            r"^optimizer 'adam_8bit' \(bitsandbytes.optim.Adam8bit\): Invalid beta parameter "
            r"at index 1: 1.5 \(got betas=\(0.9, 1.5\)\)$",
        ),
        (
            "adam_8bit",
            {"lr": (0.0, 0.0)},
            TypeError,
            r"`lr` must be a number, got tuple: \(0.0, 0.0\)$",
        ),
    ],
)
def test_keyword_errors(name: str, kwargs: dict[str, Any], error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        optreg.get_optimizer(name, make_params((4, 4)), **kwargs)


@needs_bnb
@pytest.mark.parametrize("key", ["optim_bits", "is_paged", "args"])
def test_factory_rejects_what_the_name_fixes(key: str) -> None:
    factory = optreg.get_optimizer_cls("paged_adamw_8bit")
    with pytest.raises(
        TypeError, match=rf"'paged_adamw_8bit' fixes '{key}' \(it is 8-bit, paged\)"
    ):
        factory(make_params((4, 4)), **{key: 32})
    with pytest.raises(TypeError, match=r"got an unexpected keyword argument 'momentum'.*betas"):
        factory(make_params((4, 4)), momentum=0.9)


@needs_bnb
def test_signature_leaves_out_what_the_name_fixes() -> None:
    info = optreg.optimizer_info("adamw_8bit")
    assert info.signature is not None
    assert info.signature.startswith("(params, lr=0.001, betas=(0.9, 0.999)")
    for fixed in ("optim_bits", "is_paged", "args"):
        assert fixed not in info.signature
    assert optreg.optimizer_info("sgd_8bit").required_args == ("lr",)


# --------------------------------------------------------------------------- per-parameter overrides


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(128, 64)  # 8192 elements
        self.fc = nn.Linear(64, 80)  # 5120 + 80
        self.head = nn.Linear(80, 64, bias=False)  # 5120

    def params(self) -> list[torch.Tensor]:
        return list(self.parameters())


@needs_bnb
def test_override_keeps_matching_parameters_in_32bit() -> None:
    net = Net()
    opt = optreg.get_optimizer(
        "adamw_8bit", net, lr=1e-3, overrides={"embed": {"optim_bits": 32, "lr": 1e-4}}
    )
    run(opt, net.params(), range(2))
    assert state_tensors(opt, net.embed.weight)["state1"].dtype == torch.float32
    assert state_tensors(opt, net.embed.weight)["state2"].dtype == torch.float32
    assert state_tensors(opt, net.fc.weight)["state1"].dtype == torch.uint8
    assert state_tensors(opt, net.head.weight)["state2"].dtype == torch.uint8
    embed_group = next(g for g in opt.param_groups if g["params"][0] is net.embed.weight)
    assert embed_group["lr"] == 1e-4  # an ordinary option goes into the param group
    assert all("optim_bits" not in g for g in opt.param_groups)


@needs_bnb
def test_override_equals_bitsandbytes_global_optim_manager() -> None:
    import bitsandbytes.optim as bnb_optim

    net, ref_net = Net(), Net()
    opt = optreg.get_optimizer(
        "lion_8bit", net, lr=1e-4, overrides={"*.weight": {"optim_bits": 32}, "fc.bias": {}}
    )
    # what a bitsandbytes user writes by hand
    manager = bnb_optim.GlobalOptimManager.get_instance()
    by_hand = (ref_net.embed.weight, ref_net.fc.weight, ref_net.head.weight)
    for p in by_hand:
        manager.override_config(p, "optim_bits", 32)
    try:
        ref = bnb_optim.Lion8bit(ref_net.parameters(), lr=1e-4)
        run(opt, net.params(), range(20))
        run(ref, ref_net.params(), range(20))
    finally:  # bitsandbytes keeps these by id(); later tensors must not inherit them
        for p in by_hand:
            del manager.pid2config[id(p)]
    for p, q in zip(net.params(), ref_net.params(), strict=True):
        assert torch.equal(p, q)
        assert opt.state[p]["state1"].dtype == ref.state[q]["state1"].dtype == torch.float32


@needs_bnb
def test_override_min_8bit_size_and_group_dicts() -> None:
    small, big = make_params((100,), (64, 80))
    opt = optreg.get_optimizer_cls("rmsprop_bnb_8bit")(
        [{"params": small, "min_8bit_size": 64}, {"params": [big], "optim_bits": 32}]
    )
    run(opt, [small, big], range(2))
    assert opt.state[small]["state1"].dtype == torch.uint8  # 100 >= 64
    assert opt.state[big]["state1"].dtype == torch.float32
    assert [len(g["params"]) for g in opt.param_groups] == [1, 1]


@needs_bnb
def test_overrides_stay_with_their_optimizer() -> None:
    """bitsandbytes keeps per-parameter options process-wide; optreg keeps them to the
    optimizer they were given to: the next optimizer over the same parameters, or over
    other parameters at the same positions, has plain 8-bit state."""
    import bitsandbytes.optim as bnb_optim

    net, other = Net(), Net()
    first = optreg.get_optimizer("adamw_8bit", net, overrides={"embed": {"optim_bits": 32}})
    run(first, net.params(), range(2))
    assert state_tensors(first, net.embed.weight)["state1"].dtype == torch.float32
    shared = bnb_optim.GlobalOptimManager.get_instance()
    assert id(net.embed.weight) not in shared.pid2config
    again = optreg.get_optimizer("adamw_8bit", net)
    elsewhere = optreg.get_optimizer("adamw_8bit", other)
    run(again, net.params(), range(2))
    run(elsewhere, other.params(), range(2))
    assert state_tensors(again, net.embed.weight)["state1"].dtype == torch.uint8
    assert state_tensors(elsewhere, other.embed.weight)["state1"].dtype == torch.uint8


@needs_bnb
def test_shared_manager_overrides_still_apply() -> None:
    """What transformers' Trainer registers for embeddings with the shared manager
    (``register_module_override``) still reaches an optimizer optreg built."""
    import bitsandbytes.optim as bnb_optim

    net = Net()
    shared = bnb_optim.GlobalOptimManager.get_instance()
    shared.register_module_override(net.embed, "weight", {"optim_bits": 32})
    try:
        opt = optreg.get_optimizer("adamw_8bit", net)
        run(opt, net.params(), range(2))
    finally:
        shared.module_weight_config_triple.clear()
        shared.pid2config.pop(id(net.embed.weight), None)
    assert state_tensors(opt, net.embed.weight)["state1"].dtype == torch.float32
    assert state_tensors(opt, net.fc.weight)["state1"].dtype == torch.uint8


@needs_bnb
@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("optim_bits", 16, "8 or 32"),
        ("optim_bits", True, "8 or 32"),
        ("min_8bit_size", -1, "an int >= 0"),
        ("min_8bit_size", 10.0, "an int >= 0"),
        ("max_unorm", -0.5, ">= 0"),
        ("max_unorm", float("inf"), "a finite number >= 0"),
        ("skip_zeros", 1, "True or False"),
    ],
)
def test_override_values_are_checked(option: str, value: Any, allowed: str) -> None:
    with pytest.raises(
        ValueError,
        match=rf"'adam_8bit': per-parameter option `{option}` must be {allowed}, got {value!r}",
    ):
        optreg.get_optimizer("adam_8bit", Net(), overrides={"fc": {option: value}})


# --------------------------------------------------------------------------- resume


def _resume(name: str, build: Callable[[list[nn.Parameter]], Any]) -> tuple[Any, list[Any]]:
    """Train 8 steps straight and 4 + save/load/4; assert equal; return the resumed run."""
    shapes = ((64, 80), (80,))
    straight = make_params(*shapes)
    opt = build(straight)
    run(opt, straight, range(8))

    first = make_params(*shapes)
    opt = build(first)
    run(opt, first, range(4))
    buf = io.BytesIO()
    torch.save({"params": [p.detach() for p in first], "optimizer": opt.state_dict()}, buf)
    del opt, first
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)
    resumed = [nn.Parameter(t.clone()) for t in ckpt["params"]]
    opt = build(resumed)
    opt.load_state_dict(ckpt["optimizer"])
    run(opt, resumed, range(4, 8))
    for p, q in zip(resumed, straight, strict=True):
        assert torch.equal(p, q), f"{name}: max abs diff {(p - q).abs().max().item():.3g}"
    return opt, resumed


@needs_bnb
@pytest.mark.parametrize("name", sorted(NAMES))
@pytest.mark.usefixtures("paged_note_shown")
def test_state_dict_round_trip_is_exact(name: str) -> None:
    opt, params = _resume(
        name, lambda params: optreg.get_optimizer(name, params, **kwargs_for(name))
    )
    expected = torch.uint8 if NAMES[name][1] == 8 else torch.float32
    assert opt.state[params[0]]["state1"].dtype == expected


@needs_bnb
def test_state_dict_round_trip_with_overrides() -> None:
    def build(params: list[nn.Parameter]) -> Any:
        named = list(zip(("w", "b"), params, strict=True))
        return optreg.get_optimizer(
            "adamw_8bit", named, lr=1e-3, overrides={"w": {"optim_bits": 32, "lr": 1e-4}}
        )

    opt, params = _resume("adamw_8bit", build)
    assert opt.state[params[0]]["state1"].dtype == torch.float32  # 5120 elements, overridden
    (w_group,) = [g for g in opt.param_groups if g["params"][0] is params[0]]
    assert w_group["lr"] == 1e-4 and "optim_bits" not in w_group


@needs_bnb
@pytest.mark.parametrize("name", ["paged_ademamix_8bit", "paged_ademamix_32bit", "adamw_8bit"])
def test_bnb_optimizers_pickle(name: str) -> None:
    """The paged AdEMAMix names build a subclass; pickle must find it again."""

    (p,) = make_params((64, 80))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optreg.PagedFallbackWarning)
        opt = optreg.get_optimizer(name, [p], lr=1e-3)
        run(opt, [p], range(1))
        again = pickle_round_trip(opt)
    assert type(again) is type(opt)
    # (torch's Optimizer.__getstate__ keeps defaults, state and param_groups only, so an
    # unpickled bitsandbytes optimizer lacks attributes its own __init__ sets, e.g.
    # non_castable_tensor_keys: use state_dict() for checkpoints, as everywhere)
    assert again.param_groups[0]["lr"] == 1e-3


def test_a_bitsandbytes_that_fails_to_import_is_a_missing_dependency(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(name: str) -> Any:
        raise RuntimeError("CUDA Setup failed despite GPU being available")

    monkeypatch.setattr(optreg_bnb, "import_heavy", broken)
    with pytest.raises(
        optreg.MissingDependencyError,
        match=r"bitsandbytes, which is installed but cannot be imported \(RuntimeError: CUDA "
        r"Setup failed",
    ):
        optreg_bnb.FACTORIES["adamw_8bit"]([torch.nn.Parameter(torch.zeros(2))])
    assert optreg_bnb.FACTORIES["adamw_8bit"].__signature__ is None
