"""optreg-example: the template for an optreg plugin.

It provides one optimizer (``signum``: sign of a momentum, :mod:`optreg_example.signum`)
and one schedule (``step_decay_with_warmup``: :mod:`optreg_example.schedules`), declared
in ``pyproject.toml`` under the ``optreg.optimizers`` / ``optreg.schedulers`` entry-point
groups. Importing this package imports nothing else: optreg imports a target only
when its name is used.
"""

from __future__ import annotations

__all__: list[str] = []
