"""optreg plugin: schedule-free AdamW, SGD and RAdam from the ``schedulefree`` package.

Importing this package does not import schedulefree; see :mod:`optreg_schedulefree.plugin`.
"""

from __future__ import annotations

__all__: list[str] = []
