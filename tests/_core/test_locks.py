"""A process forked while another thread holds optreg's locks builds in the child."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent(
    """
    import os, threading, time, warnings
    warnings.simplefilter("ignore", DeprecationWarning)  # 3.12: fork() with threads running
    import torch, optreg
    from optreg._core import loading, registry  # the locks under test

    held, done = threading.Event(), threading.Event()

    def hold():
        with registry.LOCK, loading._IMPORT_LOCK:
            held.set()
            done.wait()

    threading.Thread(target=hold, daemon=True).start()
    held.wait()
    pid = os.fork()
    if pid == 0:
        opt = optreg.get_optimizer("adamw", [torch.nn.Parameter(torch.zeros(2))], lr=0.1)
        os._exit(0 if isinstance(opt, torch.optim.AdamW) else 3)
    for _ in range(600):  # 60 s
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            print("exit", os.waitstatus_to_exitcode(status))
            break
        time.sleep(0.1)
    else:
        os.kill(pid, 9)
        print("hung")
    done.set()
    """
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_while_a_thread_holds_the_locks_builds() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=180)
    assert out.stdout.strip() == "exit 0", out.stdout + out.stderr
