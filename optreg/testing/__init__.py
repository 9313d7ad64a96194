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

What a name needs to be checked is read from its entry's metadata under the key
``"conformance"`` (a mapping), e.g. ``metadata={"conformance": {"requires_closure":
True}}``. Recognised keys:

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
optreg's pytest plugin) gives a test a registry of its own: every optreg state reset
before and after it, without reaching into optreg's private modules.

The verdict on every name of a distribution, as the table an adapter's README shows:
``python -m optreg.testing README.md --provider my-dist`` (``--check`` to compare).
"""

from __future__ import annotations

from optreg.testing._common import (
    METADATA_KEY,
    OPTIMIZER_CHECKS,
    SCHEDULER_CHECKS,
    Report,
    needs,
)
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
    "check_optimizer",
    "check_scheduler",
    "conformance_rows",
    "isolated_registry",
    "needs",
    "render_table",
]
