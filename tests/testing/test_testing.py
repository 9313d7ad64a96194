"""optreg.testing: the conformance kit passes good builtins and catches real defects."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.optim.lr_scheduler import LambdaLR

import optreg
from optreg.testing import (
    OPTIMIZER_CHECKS,
    SCHEDULER_CHECKS,
    Row,
    check_optimizer,
    check_scheduler,
)

pytestmark = pytest.mark.usefixtures("fresh_registry")


# -- good builtins pass ------------------------------------------------------
@pytest.mark.parametrize("name", ["adamw", "sgd"])
def test_good_builtin_optimizers_pass_every_check(name: str) -> None:
    report = check_optimizer(name)
    assert report.passed == list(OPTIMIZER_CHECKS)
    assert report.skipped == {}


@pytest.mark.parametrize("name", ["linear", "cosine", "constant"])
def test_good_builtin_schedules_pass_every_check(name: str) -> None:
    report = check_scheduler(name)
    assert report.passed == list(SCHEDULER_CHECKS)


def test_a_factory_passes_too() -> None:
    report = check_optimizer(torch.optim.Adam, lr=0.01)
    assert report.name == "optimizer factory Adam"
    assert report.passed == list(OPTIMIZER_CHECKS)


class DrawsFromNumpyAndRandom(torch.optim.SGD):
    """Scales each step by draws from the process-wide generators of numpy and Python's
    ``random`` (pytorch_optimizer's Kron draws its rebalancing from ``numpy.random``)."""

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        import random

        import numpy

        scale = 0.5 + numpy.random.random() + random.random()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"] * scale)
        return super().step(closure)


def test_an_optimizer_drawing_from_numpy_and_random_compares_runs_with_the_same_draws() -> None:
    pytest.importorskip("numpy")
    import random

    import numpy

    numpy.random.seed(7)
    random.seed(7)
    expected = (numpy.random.random(), random.random())
    numpy.random.seed(7)
    random.seed(7)
    report = check_optimizer(DrawsFromNumpyAndRandom, lr=0.01)
    assert report.passed == list(OPTIMIZER_CHECKS)
    # the process-wide generators are where the check found them
    assert (numpy.random.random(), random.random()) == expected


def test_metric_driven_scheduler_gets_a_metric() -> None:
    def plateau(optimizer: torch.optim.Optimizer) -> Any:
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=2)

    assert check_scheduler(plateau).passed == list(SCHEDULER_CHECKS)


def test_lbfgs_like_optimizer_with_closure_and_single_group() -> None:
    report = check_optimizer(torch.optim.LBFGS, requires_closure=True, param_groups=False)
    reason = "the optimizer supports a single param group only"
    assert report.skipped == {"build_from_param_groups": reason, "per_group_lr": reason}
    assert report.passed == [c for c in OPTIMIZER_CHECKS if c not in report.skipped]
    with pytest.raises(AssertionError, match="doesn't support per-parameter options"):
        check_optimizer(torch.optim.LBFGS, requires_closure=True)


def test_builtin_names_with_special_needs() -> None:
    # lbfgs: closure + single group; sparse_adam: sparse gradients; plateau: step(metric)
    assert check_optimizer("lbfgs").skipped.keys() == {"build_from_param_groups", "per_group_lr"}
    assert check_optimizer("sparse_adam").passed == list(OPTIMIZER_CHECKS)
    assert check_scheduler("reduce_lr_on_plateau").passed == list(SCHEDULER_CHECKS)


# -- defects it must catch ----------------------------------------------------
class ForgetsStep(torch.optim.Optimizer):
    """Adam-like; keeps its step counter on the instance, so a reload forgets it."""

    def __init__(self, params: Iterable[Any], lr: float = 0.01) -> None:
        super().__init__(params, {"lr": lr})
        self.t = 0

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.t += 1
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["m"] = torch.zeros_like(p)
                state["m"].mul_(0.9).add_(p.grad, alpha=0.1)
                p.add_(state["m"] / (1 - 0.9**self.t), alpha=-group["lr"])
        return loss


class IgnoresGroupLr(torch.optim.Optimizer):
    """SGD that reads lr from self.defaults instead of each group."""

    def __init__(self, params: Iterable[Any], lr: float = 0.01) -> None:
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-self._lr(group))
        return loss

    def _lr(self, group: dict[str, Any]) -> float:
        return float(self.defaults["lr"])


class NoClosureLoss(IgnoresGroupLr):
    """Honours group lr but drops the closure's loss."""

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        if closure is not None:
            with torch.enable_grad():
                closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"])
        return None


class DecaysEverything(NoClosureLoss):
    """Applies weight decay to parameters that have no gradient."""

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                p.mul_(1 - group["lr"] * 0.1)
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"])
        return loss


class Ascends(DecaysEverything):
    """Goes uphill."""

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=group["lr"])
        return loss


class CallableState(torch.optim.SGD):
    """Puts a function in its state: torch.load(weights_only=True) refuses it."""

    def __init__(self, params: Iterable[Any], lr: float = 0.01) -> None:
        super().__init__(params, lr=lr)

    def state_dict(self) -> dict[str, Any]:
        sd = super().state_dict()
        sd["param_groups"][0]["hook"] = math.sqrt
        return sd


def test_catches_an_optimizer_that_forgets_its_step_count_on_reload() -> None:
    with pytest.raises(AssertionError) as exc:
        check_optimizer(ForgetsStep)
    msg = str(exc.value)
    assert msg.startswith("optimizer factory ForgetsStep: resuming is not exact: ")
    assert "parameter 0 (shape (4, 3)) differs from never stopping by up to" in msg
    assert "a step counter kept outside optimizer.state is lost" in msg


def test_catches_an_optimizer_that_ignores_per_group_lr() -> None:
    with pytest.raises(AssertionError) as exc:
        check_optimizer(IgnoresGroupLr)
    assert str(exc.value) == (
        "optimizer factory IgnoresGroupLr: param group 0 (lr=0.01) and param group 1 "
        "(lr=0.0) got identical updates from identical parameters and gradients in 3 steps: "
        "the optimizer ignores the per-group 'lr'; read hyperparameters from each param "
        "group, not from optimizer.defaults"
    )


def test_catches_a_step_that_does_not_return_the_closure_loss() -> None:
    with pytest.raises(AssertionError, match=r"step\(closure\) returned None; it must return"):
        check_optimizer(NoClosureLoss)


def test_catches_an_update_of_a_parameter_without_grad() -> None:
    with pytest.raises(AssertionError, match="a parameter whose .grad is None changed by up to"):
        check_optimizer(DecaysEverything)


def test_catches_an_optimizer_that_does_not_descend() -> None:
    with pytest.raises(AssertionError, match="the loss did not decrease on a convex"):
        check_optimizer(Ascends)


def test_catches_state_that_weights_only_load_refuses() -> None:
    with pytest.raises(AssertionError, match=r"torch.load\(weights_only=True\): "):
        check_optimizer(CallableState)


def test_catches_a_factory_that_returns_no_optimizer() -> None:
    with pytest.raises(AssertionError, match="which is not a torch.optim.Optimizer"):
        check_optimizer(lambda params, **kw: object())


def _halving(step: int, *, every: int) -> float:
    return 0.5 ** (step // every)


def lambda_schedule(optimizer: torch.optim.Optimizer, num_training_steps: int) -> LambdaLR:
    every = max(1, num_training_steps // 4)
    return LambdaLR(optimizer, lambda step: 0.5 ** (step // every))


def partial_schedule(optimizer: torch.optim.Optimizer, num_training_steps: int) -> LambdaLR:
    return LambdaLR(optimizer, partial(_halving, every=max(1, num_training_steps // 4)))


def test_catches_a_schedule_that_is_not_picklable() -> None:
    with pytest.raises(AssertionError) as exc:
        check_scheduler(lambda_schedule)
    msg = str(exc.value)
    assert msg.startswith("scheduler factory lambda_schedule: the scheduler is not picklable: ")
    assert "bind a module-level function with functools.partial" in msg
    # the same schedule written as a partial of a module-level function passes
    assert check_scheduler(partial_schedule).passed == list(SCHEDULER_CHECKS)


def negative_schedule(optimizer: torch.optim.Optimizer) -> LambdaLR:
    return LambdaLR(optimizer, partial(_sign_flip))


def _sign_flip(step: int) -> float:
    return 1.0 if step < 5 else -1.0


def nan_schedule(optimizer: torch.optim.Optimizer) -> LambdaLR:
    return LambdaLR(optimizer, partial(_nan_at, 7))


def _nan_at(when: int, step: int) -> float:
    return math.nan if step >= when else 1.0


def test_catches_negative_and_non_finite_learning_rates() -> None:
    with pytest.raises(AssertionError) as exc:
        check_scheduler(negative_schedule)
    assert str(exc.value) == (
        "scheduler factory negative_schedule: after scheduler step 5, param group 0 has "
        "lr=-0.1; learning rates must be finite and >= 0"
    )
    with pytest.raises(AssertionError, match="after scheduler step 7, param group 0 has lr=nan"):
        check_scheduler(nan_schedule)


class CountingSchedule(LambdaLR):
    """Keeps a counter outside its state_dict: resuming restarts the decay."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.calls = 0
        super().__init__(optimizer, partial(_halving, every=1))

    def get_lr(self) -> list[float]:
        self.calls += 1
        return [base * 0.9**self.calls for base in self.base_lrs]

    def state_dict(self) -> dict[str, Any]:
        sd = super().state_dict()
        sd.pop("calls", None)
        return sd


def test_catches_a_scheduler_whose_state_dict_is_incomplete() -> None:
    with pytest.raises(
        AssertionError, match="scheduler factory CountingSchedule: resuming is not exact"
    ):
        check_scheduler(CountingSchedule)


# -- options and errors --------------------------------------------------------
def test_skip_checks_are_reported_and_validated() -> None:
    report = check_optimizer(ForgetsStep, skip_checks={"resume_bit_identical": "known issue"})
    assert report.skipped == {"resume_bit_identical": "known issue"}
    assert "resume_bit_identical" not in report.passed
    with pytest.raises(TypeError, match="unknown check name 'resume' in skip_checks"):
        check_optimizer("sgd", skip_checks={"resume": "typo"})


def test_rejects_what_is_neither_name_nor_callable() -> None:
    with pytest.raises(TypeError, match="takes a optimizer name or a factory callable, got int: 3"):
        check_optimizer(3)  # type: ignore[arg-type]


def test_metadata_declares_what_a_name_needs() -> None:
    import optreg

    optreg.register_optimizer(
        "group_blind",
        IgnoresGroupLr,
        metadata={"conformance": {"skip_checks": {"per_group_lr": "one lr for all"}}},
    )
    report = check_optimizer("group_blind")
    assert report.skipped == {"per_group_lr": "one lr for all"}


class LrFree(IgnoresGroupLr):
    """An optimizer with no lr at all (as A2Grad or ALIG): a fixed step size."""

    def __init__(self, params: Iterable[Any], step_size: float = 0.05) -> None:
        torch.optim.Optimizer.__init__(self, params, {"step_size": step_size})

    def _lr(self, group: dict[str, Any]) -> float:
        return float(group["step_size"])


class FirstGroupLr(IgnoresGroupLr):
    """SGD that keeps lr in its groups only (not in ``defaults``, as pytorch_optimizer's
    Muon family does) and, buggy, steps every group with the first group's."""

    def __init__(self, params: Iterable[Any], lr: float = 0.05) -> None:
        torch.optim.Optimizer.__init__(self, params, {})
        for group in self.param_groups:
            group.setdefault("lr", lr)

    def _lr(self, group: dict[str, Any]) -> float:
        return float(self.param_groups[0]["lr"])


def test_an_optimizer_without_any_lr_skips_the_group_check() -> None:
    report = check_optimizer(LrFree)
    assert report.skipped == {
        "per_group_lr": "optimizer.defaults['lr'] is '(absent)' and a group's is '(absent)', "
        "not a positive number: per-group lr cannot be checked"
    }


def test_a_numeric_default_lr_of_none_skips_the_group_check() -> None:
    report = check_optimizer("adafactor")  # relative steps: lr=None
    assert report.skipped == {
        "per_group_lr": "optimizer.defaults['lr'] is None and a group's is None, not a "
        "positive number: per-group lr cannot be checked"
    }


def test_an_lr_kept_in_the_groups_only_is_checked_from_the_groups() -> None:
    def groups_only(params: Any, **kw: Any) -> torch.optim.Optimizer:
        opt = torch.optim.SGD(params, **kw)
        del opt.defaults["lr"]
        return opt

    report = check_optimizer(groups_only, lr=0.05)
    assert "per_group_lr" in report.passed and not report.skipped
    with pytest.raises(AssertionError, match=r"param group 0 \(lr=0.05\) and param group 1"):
        check_optimizer(FirstGroupLr)


# -- the pytest plugin -------------------------------------------------------------
def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_nothing.py").write_text("def test_ok():\n    pass\n")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", *args, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )


def test_pytest_plugin_checks_selected_names_and_reports_defects(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            """
            import optreg
            from torch.optim.lr_scheduler import LambdaLR

            def bad(optimizer):
                return LambdaLR(optimizer, lambda step: 1.0)

            optreg.register_scheduler("bad_lambda", bad)
            """
        )
    )
    proc = _pytest(tmp_path, "-v", "--optreg-names=adamw,linear,optreg:sgd,bad_lambda")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    for node in (
        "optimizer[optreg:adamw] PASSED",
        "optimizer[optreg:sgd] PASSED",
        "scheduler[optreg:linear] PASSED",
        "scheduler[__runtime__:bad_lambda] FAILED",
    ):
        assert f"optreg-conformance::{node}" in proc.stdout
    # the failure shows the contract violation, not a traceback into the kit
    assert "scheduler '__runtime__:bad_lambda': the scheduler is not picklable: " in proc.stdout
    assert "Traceback" not in proc.stdout
    assert "1 failed, 4 passed" in proc.stdout


def test_pytest_plugin_is_silent_without_the_option(tmp_path: Path) -> None:
    proc = _pytest(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout
    assert "optreg-conformance" not in proc.stdout


def test_pytest_plugin_rejects_unknown_names(tmp_path: Path) -> None:
    proc = _pytest(tmp_path, "--optreg-names=adamv")
    assert proc.returncode == 4
    assert "--optreg-names: 'adamv': " in proc.stderr


def test_importing_the_plugin_is_cheap() -> None:
    code = (
        "import sys, optreg.testing, optreg.testing.plugin; "
        "print(sorted(m for m in ('torch', 'importlib_metadata', 'bitsandbytes') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_pytest_plugin_rejects_an_unknown_provider(tmp_path: Path) -> None:
    """A typo in --optreg-provider must not run zero conformance tests and pass CI."""
    proc = _pytest(tmp_path, "--optreg-conformance", "--optreg-provider=optreg_")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert (
        "--optreg-provider: no installed distribution 'optreg_' provides an optimizer or "
        "scheduler; did you mean 'optreg'?"
    ) in proc.stderr


# ---------------------------------------------------------------- the kit table
def test_the_kit_table_states_each_verdict_and_the_file_round_trips(tmp_path: Path) -> None:
    import optreg
    from optreg.testing import (
        conformance_rows,
        main,  # python -m optreg.testing
        render_table,
    )

    optreg.register_optimizer("good_sgd", torch.optim.SGD)
    optreg.register_optimizer("forgets", ForgetsStep)
    optreg.register_optimizer(
        "gapped", IgnoresGroupLr, metadata={"conformance": {"skip_checks": {"per_group_lr": "why"}}}
    )
    optreg.register_optimizer("skipped", torch.optim.SGD, metadata={"conformance": {"skip": "no"}})
    optreg.register_optimizer("missing", "not_installed_pkg:Opt")
    rows = {r.name: r for r in conformance_rows(["__runtime__"])}
    assert {n: r.status for n, r in rows.items()} == {
        "forgets": "fails",
        "gapped": "passes, with gaps",
        "good_sgd": "passes",
        "missing": "unavailable",
        "skipped": "not checked",
    }
    assert rows["forgets"].detail.startswith("resuming is not exact: ")
    assert rows["gapped"].detail == "per_group_lr: why"
    assert rows["missing"].detail.endswith("install it with: pip install not_installed_pkg")
    table = render_table(list(rows.values()))
    assert table.splitlines()[0] == (
        "5 names: 1 passes, 1 passes, with gaps, 1 fails, 1 not checked, 1 unavailable."
    )
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- optreg-kit-table:start -->\n<!-- optreg-kit-table:end -->\n")
    assert main([str(readme), "--provider", "__runtime__", "--check"]) == 1
    assert main([str(readme), "--provider", "__runtime__"]) == 0
    assert main([str(readme), "--provider", "__runtime__", "--check"]) == 0
    assert "| optimizer | `good_sgd` | passes |  |" in readme.read_text()
    assert main([str(readme), "--provider", "nobody"]) == 2


def test_a_name_that_needs_a_device_is_not_checked_and_says_which() -> None:
    import optreg
    from optreg.testing import conformance_rows

    optreg.register_optimizer(
        "on_gpu", torch.optim.SGD, metadata={"conformance": {"device": "cuda"}}
    )
    optreg.register_optimizer(
        "on_gpu_why",
        torch.optim.SGD,
        metadata={"conformance": {"device": "cuda", "skip": "builds CUDA tensors"}},
    )
    optreg.register_optimizer(
        "on_tpu", "not_installed_xla:Opt", metadata={"conformance": {"device": "xla"}}
    )
    rows = {r.name: r for r in conformance_rows(["__runtime__"])}
    assert rows["on_gpu"] == Row(
        "optimizer",
        "on_gpu",
        "not checked",
        "needs CUDA hardware (the kit's problem runs on the CPU)",
        "cuda",
    )
    assert rows["on_gpu_why"].detail == (
        "needs CUDA hardware (the kit's problem runs on the CPU): builds CUDA tensors"
    )
    assert (rows["on_tpu"].status, rows["on_tpu"].device) == ("unavailable", "xla")
    assert rows["on_tpu"].detail.endswith(
        "install it with: pip install not_installed_xla; it needs XLA hardware too"
    )
    with pytest.raises(
        TypeError,
        match=r"optimizer 'bad_device': Conformance.device names the device .* got 'cpu'",
    ):  # refused where it is declared, not when the kit comes to check it
        optreg.register_optimizer(
            "bad_device", torch.optim.SGD, metadata={"conformance": {"device": "cpu"}}
        )


def test_conformance_is_typed_and_checked_at_registration() -> None:
    from optreg.testing import needs

    with pytest.raises(
        ValueError,
        match=r"optimizer 'typo': metadata\['conformance'\] has 'requires_closue', which the "
        r"kit does not read; known: skip, device, kwargs, requires_closure",
    ):
        optreg.register_optimizer(
            "typo", torch.optim.LBFGS, metadata={"conformance": {"requires_closue": True}}
        )
    with pytest.raises(TypeError, match=r"optimizer 'listed': metadata\['conformance'\] must be"):
        optreg.register_optimizer("listed", torch.optim.SGD, metadata={"conformance": ["skip"]})
    typed = optreg.Traits(conformance=optreg.Conformance(requires_closure=True, param_groups=False))
    optreg.register_optimizer("typed_lbfgs", torch.optim.LBFGS, traits=typed)
    optreg.register_optimizer(
        "both", torch.optim.LBFGS, traits=optreg.Traits(train_eval=False),
        metadata={"conformance": {"requires_closure": True, "param_groups": False}},
    )  # fmt: skip
    for name in ("typed_lbfgs", "both"):
        entry = optreg.optimizers.resolve(name)
        assert needs(entry) == {"requires_closure": True, "param_groups": False}
        assert entry.traits.conformance.requires_closure is True
    assert check_optimizer("typed_lbfgs", lr=0.5).passed


def test_isolated_registry_forgets_what_a_test_registered_and_preferred(
    fresh_registry: optreg.Catalog,
) -> None:
    from optreg.testing import isolated_registry

    with isolated_registry() as inner:
        optreg.register_optimizer("isolated_sgd", torch.optim.SGD)
        optreg.prefer("someone")
        assert "isolated_sgd" in optreg.list_optimizers()
    assert "isolated_sgd" not in optreg.list_optimizers()
    assert inner.preferred == ["someone"] and fresh_registry.preferred == []


def test_the_isolated_registry_fixture_of_optregs_pytest_plugin(isolated_registry: None) -> None:
    optreg.register_optimizer("fixture_sgd", torch.optim.SGD)  # forgotten after the test
    assert optreg.optimizers.resolve("fixture_sgd").source == "runtime"


def test_plugin_suites_import_nothing_private_from_optreg() -> None:
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "plugins"
    private = re.compile(
        r"(?:from|import)\s+optreg(?:\.\w+)*\._\w+|from\s+optreg(?:\.\w+)*\s+import\s+[^\n]*\b_\w+"
    )
    offenders = [
        f"{path.relative_to(root)}:{i}: {line.strip()}"
        for path in sorted(root.glob("*/tests/**/*.py"))
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if private.search(line)
    ]
    assert sorted(root.glob("*/tests/**/*.py")), "no plugin suites found"
    assert offenders == []
