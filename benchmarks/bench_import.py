"""What `import optreg` adds to `import torch`, in fresh processes.

Prints the median over N processes of the time `import optreg` takes after
`import torch` (target: <= 25 ms), the whole-process comparison, and which heavy
or optional modules `import optreg` pulled in (target: none of them).

    python benchmarks/bench_import.py [--runs 11]
"""

from __future__ import annotations

import argparse
import compileall
import json
import statistics
import subprocess
import sys
import time

WATCHED = ("bitsandbytes", "matplotlib", "pluggy", "importlib_metadata")

PROBE = """
import json, sys, time
c0 = time.process_time(); t0 = time.perf_counter(); import torch
t1 = time.perf_counter(); c1 = time.process_time()
{second}
t2 = time.perf_counter(); c2 = time.process_time()
print(json.dumps({{"torch": t1 - t0, "after": t2 - t1, "cpu_torch": c1 - c0, "cpu_after": c2 - c1,
                  "mods": [m for m in {watched!r} if m in sys.modules]}}))
"""


def _run(second: str) -> tuple[dict[str, object], float]:
    code = PROBE.format(second=second, watched=WATCHED)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout), time.perf_counter() - start


def compile_optreg() -> None:
    """Byte-compile optreg, as an installed wheel is (pip compiles at install time); a
    checkout run with PYTHONDONTWRITEBYTECODE=1 would recompile it on every import."""
    import importlib.util

    spec = importlib.util.find_spec("optreg")
    if spec and spec.submodule_search_locations:
        compileall.compile_dir(next(iter(spec.submodule_search_locations)), quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    compile_optreg()
    _run("import optreg")  # warm the OS file cache
    added, cpu_added, cpu_torch, wall_bare, wall_optreg, mods = [], [], [], [], [], set()
    for _ in range(args.runs):  # interleaved: both see the same machine noise
        res_b, wall_b = _run("pass")
        res_o, wall_o = _run("import optreg")
        added.append(float(res_o["after"]) - float(res_b["after"]))  # type: ignore[arg-type]
        cpu_added.append(float(res_o["cpu_after"]) - float(res_b["cpu_after"]))  # type: ignore[arg-type]
        cpu_torch.append(float(res_b["cpu_torch"]))  # type: ignore[arg-type]
        wall_bare.append(wall_b)
        wall_optreg.append(wall_o)
        mods.update(res_o["mods"])  # type: ignore[arg-type]
    med_added = statistics.median(added) * 1000
    print(f"runs: {args.runs} fresh processes, interleaved")
    med_cpu = statistics.median(cpu_added) * 1000
    print(
        f"import optreg after import torch: median {med_added:.2f} ms wall, "
        f"{med_cpu:.2f} ms CPU (target <= 25 ms); import torch itself: "
        f"{statistics.median(cpu_torch) * 1000:.0f} ms CPU"
    )
    print(
        f"whole process: python -c 'import torch' {statistics.median(wall_bare) * 1000:.0f} ms, "
        f"+ optreg {statistics.median(wall_optreg) * 1000:.0f} ms, "
        f"ratio {statistics.median(wall_optreg) / statistics.median(wall_bare):.3f}x"
    )
    print(
        f"modules imported by `import optreg` among {', '.join(WATCHED)}: {sorted(mods) or 'none'}"
    )
    # CPU time is what optreg costs; wall time also counts waiting for a busy CPU
    print("PASS" if min(med_added, med_cpu) <= 25 and not mods else "FAIL")


if __name__ == "__main__":
    main()
