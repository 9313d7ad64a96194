"""optreg's locks, made safe across ``os.fork``.

A process forked while another thread holds one of optreg's locks would inherit it held,
by a thread that does not exist in the child, and block for ever on its first build.
Every lock optreg keeps is made here and re-initialised (released) in a forked child.
"""

from __future__ import annotations

import os
import threading
from typing import Any

__all__ = ["fork_safe_lock"]


def fork_safe_lock(*, reentrant: bool = True) -> Any:
    """A new ``threading.RLock`` (or ``Lock``) that a forked child starts with released."""
    lock: Any = threading.RLock() if reentrant else threading.Lock()
    if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
        os.register_at_fork(after_in_child=lock._at_fork_reinit)
    return lock
