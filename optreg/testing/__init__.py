"""Conformance checks for optimizer and scheduler plugins, and a pytest plugin running them.

A plugin author checks a name (or a factory) with one call::

    from optreg.testing import check_optimizer, check_scheduler

    def test_my_optimizer():
        check_optimizer("signsgd", lr=0.01)

    def test_my_schedule():
        check_scheduler("my_schedule")

or every installed name at once, from the command line (this module is a pytest
plugin registered through the ``pytest11`` entry point)::

    pytest --optreg-conformance                         # every installed name
    pytest --optreg-conformance --optreg-provider=my-dist   # just my distribution's names
    pytest --optreg-names=signsgd,my_schedule            # just these names

Each check is deterministic (fixed seeds, a fixed convex least-squares problem)
and raises `AssertionError` with a precise message on the first violation.

Optimizer checks: builds from a list of tensors and from param groups (every group
gets the defaults); per-group ``lr`` is honoured; a parameter without a gradient
is left untouched; ``step(closure)`` returns the closure's loss; the loss decreases;
``state_dict -> torch.save -> torch.load(weights_only=True) -> load_state_dict`` into
a fresh instance, then continuing, is bit-identical to never stopping.

Scheduler checks: builds on an optimizer with two param groups; every learning rate
is a finite number >= 0 at every step; the same resume check (optimizer and
scheduler state saved and restored); the scheduler pickles and the copy continues
identically.

What a name needs to be checked is declared with it as an [optreg.Conformance][]
(``traits=optreg.Traits(conformance=optreg.Conformance(requires_closure=True))``) or as
the mapping ``metadata={"conformance": {"requires_closure": True}}``, both checked when
the name is registered. Its fields:

* ``skip``: a reason; the name is not checked by the pytest plugin.
* ``device``: the device the name needs beyond the CPU (``"cuda"``, ``"xla"``,
  ``"npu"``): the problem runs on the CPU, so the name is not checked, and the kit
  table and ``benchmarks/reach.py`` count it apart.
* ``kwargs``: keyword arguments for building the optimizer or the scheduler.
* ``requires_closure``: every step is ``optimizer.step(closure)`` (e.g. LBFGS).
* ``sparse_grad``: the problem produces sparse gradients (e.g. SparseAdam).
* ``create_graph``: ``backward(create_graph=True)`` (Hessian-based optimizers).
* ``matrices_only``: every parameter of the problem is 2-D (e.g. Muon).
* ``needs_train_eval`` (top-level metadata key too): call ``optimizer.train()``
  before training steps and ``optimizer.eval()`` before saving (schedule-free).
* ``param_groups``: False for an optimizer that supports a single param group
  (e.g. LBFGS): the param-group checks are skipped.
* ``skip_checks``: ``{check name: reason}`` for checks that do not apply.
* ``optimizer`` / ``optimizer_kwargs`` (schedulers): the optimizer name to
  schedule instead of ``torch.optim.SGD`` (e.g. ``"adafactor"``).
* ``metric_driven`` (schedulers): ``step(metric)``; detected from the signature
  of ``step`` when not given.

``isolated_registry()`` (a context manager, and a pytest fixture of the same name from
optreg's pytest plugin) gives a test a catalog of its own ([optreg.Catalog][]), the one before put back after
it, without reaching into optreg's private modules.

The verdict on every name of a distribution, as the table an adapter's README shows:
``python -m optreg.testing README.md --provider my-dist`` (``--check`` to compare;
`main` is that command).

The capabilities (compile, bf16, DDP, FSDP2) of names, measured for real:
`measure_local` (one name, in this process, on a device), `measure_distributed` (names,
on two ranks), `measure_capabilities` and `capability_table` (both, as the table
``--capabilities`` writes), `stale_rows` (where a published table differs);
`fsdp2_missing` says why FSDP2 cannot run here, or None.

Stepping any name in a loop of your own, as the kit and the integrations do:
`step_scheduler` (with the metric where the scheduler is metric-driven,
`step_needs_metric`), `needs_closure` (the optimizer's step requires a closure).
"""

from __future__ import annotations

from optreg._core.signature import needs_closure, step_needs_metric, step_scheduler
from optreg.testing._capabilities import (
    capability_table,
    measure_capabilities,
    measure_local,
    stale_rows,
)
from optreg.testing._command import main
from optreg.testing._common import (
    METADATA_KEY,
    OPTIMIZER_CHECKS,
    SCHEDULER_CHECKS,
    Report,
    fsdp2_missing,
    needs,
)
from optreg.testing._distributed import measure_distributed
from optreg.testing._isolation import isolated_registry
from optreg.testing._optimizers import check_optimizer
from optreg.testing._schedulers import check_scheduler
from optreg.testing._table import Row, assert_table_current, conformance_rows
from optreg.testing._table import render as render_table

__all__ = [
    "METADATA_KEY",
    "OPTIMIZER_CHECKS",
    "SCHEDULER_CHECKS",
    "Report",
    "Row",
    "assert_table_current",
    "capability_table",
    "check_optimizer",
    "check_scheduler",
    "conformance_rows",
    "fsdp2_missing",
    "isolated_registry",
    "main",
    "measure_capabilities",
    "measure_distributed",
    "measure_local",
    "needs",
    "needs_closure",
    "render_table",
    "stale_rows",
    "step_needs_metric",
    "step_scheduler",
]
