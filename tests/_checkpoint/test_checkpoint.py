"""optreg.state_dict / load_state_dict / from_state_dict: the checkpoint record.

A record resumes bit-identically (through ``torch.load(weights_only=True)``), rebuilds
both objects without their names, and is checked against the objects before anything
is loaded: each row of MISMATCHES is one difference the README's table lists.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch

import optreg
from optreg import CheckpointMismatchError, CheckpointMismatchWarning

STEPS, SAVE_AT = 8, 4


class Net(torch.nn.Module):
    def __init__(self, width: int = 6) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(10, width)
        self.proj = torch.nn.Linear(width, width)
        self.norm = torch.nn.LayerNorm(width)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(self.embed(idx)))


def _step(model: Net, opt: Any, sched: Any, step: int) -> None:
    gen = torch.Generator().manual_seed(step)
    model(torch.randint(0, 10, (4,), generator=gen)).pow(2).mean().backward()
    opt.step()
    sched.step()
    opt.zero_grad()


def _build(
    model: Net, name: str = "adamw", schedule: str = "cosine", **kwargs: Any
) -> tuple[Any, Any]:
    opt_kwargs = {"lr": 1e-2, "weight_decay": 0.01, **kwargs.pop("opt", {})}
    opt = optreg.get_optimizer(name, model, **opt_kwargs)
    sched_kwargs = {"num_warmup_steps": 2, "num_training_steps": STEPS, **kwargs}
    return opt, optreg.get_scheduler(schedule, opt, **sched_kwargs)


def _through_bytes(record: dict[str, Any]) -> dict[str, Any]:
    buf = io.BytesIO()
    torch.save(record, buf)
    buf.seek(0)
    loaded: dict[str, Any] = torch.load(buf, weights_only=True)
    return loaded


def _checkpoint(name: str = "adamw", **kwargs: Any) -> tuple[dict[str, Any], Net]:
    model = Net()
    opt, sched = _build(model, name, **kwargs)
    for step in range(SAVE_AT):
        _step(model, opt, sched, step)
    return _through_bytes(optreg.state_dict(opt, sched)), model


@pytest.mark.parametrize(
    ("name", "opt"),
    [
        ("adamw", {}),
        ("sgd", {"momentum": 0.9}),
        ("adafactor", {"relative_step": False}),
        ("adamw_8bit", {}),
    ],
)
@pytest.mark.parametrize("rebuild", [False, True], ids=["load", "from_state_dict"])
def test_a_record_resumes_bit_identically(name: str, opt: dict[str, Any], rebuild: bool) -> None:
    if not optreg.optimizer_info(name).available:
        pytest.skip(str(optreg.optimizer_info(name).reason))
    straight = Net()
    s_opt, s_sched = _build(straight, name, opt=opt)
    record = None
    for step in range(STEPS):
        if step == SAVE_AT:
            record = _through_bytes(optreg.state_dict(s_opt, s_sched))
            resumed = Net()
            resumed.load_state_dict(straight.state_dict())
        _step(straight, s_opt, s_sched, step)
    assert record is not None
    if rebuild:  # neither the name nor an argument is restated
        r_opt, r_sched = optreg.from_state_dict(record, resumed)
    else:
        r_opt, r_sched = _build(resumed, name, opt=opt)
        optreg.load_state_dict(record, r_opt, r_sched)
    assert type(r_opt) is type(s_opt)
    for step in range(SAVE_AT, STEPS):
        _step(resumed, r_opt, r_sched, step)
    assert [g["lr"] for g in r_opt.param_groups] == [g["lr"] for g in s_opt.param_groups]
    for (n, a), b in zip(straight.named_parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b), n


def test_the_record_says_what_was_built() -> None:
    record, _ = _checkpoint(opt={"betas": (0.8, 0.9)})
    saved = record["optimizer"]
    assert record["format"] == "optreg.checkpoint/1"
    assert (saved["name"], saved["provider"]) == ("optreg:adamw", "optreg")
    assert saved["provider_version"] == optreg.__version__
    assert saved["kwargs"] == {"lr": 1e-2, "weight_decay": 0.01, "betas": (0.8, 0.9)}
    assert saved["groups"] == [  # the default no-decay split, by FQN
        {"params": ["embed.weight", "proj.weight"], "shapes": [[10, 6], [6, 6]]},
        {"params": ["proj.bias", "norm.weight", "norm.bias"], "shapes": [[6], [6], [6]]},
    ]
    sched = record["scheduler"]
    assert (sched["name"], sched["num_warmup_steps"], sched["num_training_steps"]) == (
        "optreg:cosine",
        2,
        STEPS,
    )
    assert sched["state"]["last_epoch"] == SAVE_AT


def _renamed() -> Net:
    model = Net()
    model.proj2 = model.proj  # registered second: the FQNs change, the shapes do not
    del model.proj
    return model


# (what differs, how the fresh objects are built, the error's words)
MISMATCHES: list[tuple[str, Callable[[], tuple[Any, Any]], str]] = [
    (
        "another optimizer",
        lambda: _build(Net(), "nadam"),
        r"the checkpoint is for optimizer 'optreg:adamw' "
        rf"\(optreg {re.escape(optreg.__version__)}\), this one is 'optreg:nadam'",
    ),
    (
        "another schedule",
        lambda: _build(Net(), schedule="linear"),
        r"the checkpoint is for schedule 'optreg:cosine', this one is 'optreg:linear'",
    ),
    (
        "fewer param groups",
        lambda: _build(Net(), opt={"weight_decay": 0.0}),
        r"the checkpoint has 2 param groups, this optimizer 1",
    ),
    (
        "another shape",
        lambda: _build(Net(width=8)),
        r"param group 0, 'embed.weight': shape \[10, 6\] in the checkpoint, \[10, 8\] here",
    ),
    (
        "other parameter names",
        lambda: _build(_renamed()),
        r"param group 1, parameter 0: 'proj.bias' in the checkpoint, 'norm.weight' here",
    ),
    (
        "another num_training_steps",
        lambda: _build(Net(), num_training_steps=2 * STEPS),
        r"schedule 'optreg:cosine' would continue differently: num_training_steps=8 in the "
        r"checkpoint, 16 here",
    ),
    (
        "another schedule argument",
        lambda: _build(Net(), num_cycles=1.5),
        r"num_cycles=0\.5 in the checkpoint, 1\.5 here",
    ),
    (
        "no scheduler given",
        lambda: (_build(Net())[0], None),
        r"holds the state of schedule 'optreg:cosine': pass its scheduler too",
    ),
]


@pytest.mark.parametrize(
    ("what", "make", "match"), MISMATCHES, ids=[row[0].replace(" ", "-") for row in MISMATCHES]
)
def test_a_mismatch_is_named_and_nothing_is_loaded(
    what: str, make: Callable[[], tuple[Any, Any]], match: str
) -> None:
    record, _ = _checkpoint()
    opt, sched = make()
    before = opt.state_dict()
    with pytest.raises(
        CheckpointMismatchError,
        match=r"cannot load this checkpoint \(nothing was loaded\): .*" + match,
    ):
        optreg.load_state_dict(record, opt, sched)
    assert opt.state_dict() == before  # untouched: no state, the lrs as built
    assert sched is None or sched.last_epoch == 0


def test_schedule_arguments_warn_when_not_strict() -> None:
    record, _ = _checkpoint()
    opt, sched = _build(Net(), num_training_steps=2 * STEPS)
    with pytest.warns(
        CheckpointMismatchWarning, match=r"continues with the arguments it was built with here"
    ):
        optreg.load_state_dict(record, opt, sched, strict=False)
    assert sched.last_epoch == SAVE_AT


def test_other_hyperparameters_warn_and_the_checkpoints_continue() -> None:
    record, _ = _checkpoint()
    opt, sched = _build(Net(), opt={"lr": 5e-2, "eps": 1e-6})
    with pytest.warns(
        CheckpointMismatchWarning,
        match=r"the checkpoint's continue: eps=1e-08 in the checkpoint, 1e-06 here; "
        r"lr=0\.01 in the checkpoint, 0\.05 here",
    ):
        optreg.load_state_dict(record, opt, sched)
    assert opt.param_groups[0]["initial_lr"] == 1e-2  # torch restored the saved options
    assert opt.param_groups[0]["eps"] == 1e-8


def test_a_schedule_given_where_none_was_saved() -> None:
    model = Net()
    opt, sched = _build(model)
    record = _through_bytes(optreg.state_dict(opt))
    assert record["scheduler"] is None
    with pytest.raises(
        CheckpointMismatchError, match=r"holds no schedule, but a scheduler was given"
    ):
        optreg.load_state_dict(record, opt, sched)
    rebuilt, none = optreg.from_state_dict(record, Net())
    assert none is None and type(rebuilt) is torch.optim.AdamW


def test_not_a_record_and_objects_optreg_did_not_build() -> None:
    opt, sched = _build(Net())
    with pytest.raises(
        CheckpointMismatchError, match=r"not an optreg checkpoint record \(format None"
    ):
        optreg.load_state_dict(opt.state_dict(), opt, sched)
    plain = torch.optim.SGD(Net().parameters(), lr=0.1)
    with pytest.raises(TypeError, match=r"this SGD was not built by optreg.get_optimizer"):
        optreg.state_dict(plain)
    with pytest.raises(TypeError, match=r"this LambdaLR was not built by optreg.get_scheduler"):
        optreg.state_dict(opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0))


def test_bare_tensors_are_checked_by_shape() -> None:
    params = [torch.nn.Parameter(torch.zeros(3, 2)), torch.nn.Parameter(torch.zeros(2))]
    opt = optreg.get_optimizer("sgd", iter(params), lr=0.1)  # a generator: read once
    record = optreg.state_dict(opt)
    assert record["optimizer"]["groups"] == [{"params": [None, None], "shapes": [[3, 2], [2]]}]
    other = optreg.get_optimizer("sgd", [torch.nn.Parameter(torch.zeros(3, 3)), params[1]], lr=0.1)
    with pytest.raises(
        CheckpointMismatchError,
        match=r"'params\[0\]': shape \[3, 2\] in the checkpoint, \[3, 3\] here",
    ):
        optreg.load_state_dict(record, other)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optreg.load_state_dict(record, optreg.get_optimizer("sgd", params, lr=0.1))


SAME_BUILD_SPELLED_OTHERWISE = [
    (
        "an explicit default",
        {"num_warmup_steps": 2, "num_training_steps": STEPS},
        {"num_warmup_steps": 2, "num_training_steps": STEPS, "num_cycles": 0.5},
    ),
    (
        "a warmup fraction",
        {"num_warmup_steps": 2, "num_training_steps": STEPS},
        {"num_warmup_steps": 0.25, "num_training_steps": STEPS},
    ),
    ("whole floats", {"num_warmup_steps": 2}, {"num_warmup_steps": 2.0, "num_training_steps": 8.0}),
]


@pytest.mark.parametrize(
    ("what", "saved", "here"),
    SAME_BUILD_SPELLED_OTHERWISE,
    ids=[row[0].replace(" ", "-") for row in SAME_BUILD_SPELLED_OTHERWISE],
)
def test_the_same_schedule_spelled_otherwise_loads_without_a_word(
    what: str, saved: dict[str, Any], here: dict[str, Any]
) -> None:
    saved = {"num_training_steps": STEPS, **saved}
    model = Net()
    opt = optreg.get_optimizer("adamw", model, lr=1e-2)
    sched = optreg.get_scheduler("cosine", opt, **saved)
    _step(model, opt, sched, 0)
    record = _through_bytes(optreg.state_dict(opt, sched))
    opt2 = optreg.get_optimizer("adamw", Net(), lr=1e-2, eps=1e-8, weight_decay=0.01)
    sched2 = optreg.get_scheduler("cosine", opt2, **here)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no CheckpointMismatchWarning either
        optreg.load_state_dict(record, opt2, sched2)
    assert sched2.last_epoch == 1


def test_constant_given_step_counts_it_ignores_loads() -> None:
    model = Net()
    opt = optreg.get_optimizer("sgd", model, lr=0.1)
    sched = optreg.get_scheduler("constant", opt)
    record = _through_bytes(optreg.state_dict(opt, sched))
    opt2 = optreg.get_optimizer("sgd", Net(), lr=0.1)
    sched2 = optreg.get_scheduler("constant", opt2, num_warmup_steps=3, num_training_steps=100)
    optreg.load_state_dict(record, opt2, sched2)  # strict: no difference to refuse


class _Wrapper(torch.nn.Module):
    """Names its child as DDP does (``module.``)."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.module = module


@pytest.mark.parametrize(
    ("wrap_saved", "wrap_here"),
    [
        (lambda m: m, lambda m: torch.compile(m)),
        (lambda m: torch.compile(m), lambda m: m),
        (lambda m: _Wrapper(m), lambda m: m),
        (lambda m: m, lambda m: _Wrapper(torch.compile(m))),
    ],
    ids=["compiled-here", "compiled-there", "ddp-there", "ddp-and-compiled-here"],
)
# importing torch._dynamo (torch.compile's first use) warns about torch.jit in torch 2.13
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_a_model_wrapped_on_one_side_only_loads(
    wrap_saved: Callable[[Net], torch.nn.Module], wrap_here: Callable[[Net], torch.nn.Module]
) -> None:
    model = Net()
    opt, sched = _build(model)
    _step(model, opt, sched, 0)
    opt = optreg.get_optimizer("adamw", wrap_saved(model), lr=1e-2, weight_decay=0.01)
    sched = optreg.get_scheduler("cosine", opt, num_warmup_steps=2, num_training_steps=STEPS)
    _step(model, opt, sched, 0)
    record = _through_bytes(optreg.state_dict(opt, sched))
    assert (
        any(
            n.startswith(("_orig_mod.", "module."))
            for g in record["optimizer"]["groups"]
            for n in g["params"]
        )
        or wrap_saved(model) is model
    )
    here = wrap_here(Net())
    opt2 = optreg.get_optimizer("adamw", here, lr=1e-2, weight_decay=0.01)
    sched2 = optreg.get_scheduler("cosine", opt2, num_warmup_steps=2, num_training_steps=STEPS)
    optreg.load_state_dict(record, opt2, sched2)
    assert torch.equal(
        opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"]
    )


def test_a_renamed_parameter_is_still_refused_and_the_comparison_is_explained() -> None:
    model = Net()
    opt, sched = _build(_Wrapper(model))  # type: ignore[arg-type]
    record = _through_bytes(optreg.state_dict(opt, sched))

    class Other(Net):
        def __init__(self) -> None:
            super().__init__()
            self.other = self.proj
            del self.proj

    opt2, sched2 = _build(Other())
    with pytest.raises(
        CheckpointMismatchError,
        match=r"'module\.proj\.weight' in the checkpoint, 'other\.weight' here.*compared "
        r"without the _orig_mod\. / module\. prefixes",
    ):
        optreg.load_state_dict(record, opt2, sched2)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("module._orig_mod.fc.weight", "fc.weight"),
        ("_orig_mod.module.fc.weight", "fc.weight"),
        ("_fsdp_wrapped_module.layers.0._checkpoint_wrapped_module.w", "layers.0.w"),
        ("encoder.module.w", "encoder.module.w"),  # a child named module, not a wrapper
        ("module", "module"),
        (None, None),
    ],
)
def test_unwrapped_name(name: str | None, expected: str | None) -> None:
    # how a checkpoint names a wrapped parameter: cases no model builds
    from optreg._checkpoint.state import unwrapped_name

    assert unwrapped_name(name) == expected
