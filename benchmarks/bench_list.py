"""`optreg list` against `python -c "import torch"`, side by side in one run.

Both commands run as fresh processes, interleaved (list, torch, list, torch, ...) so
that the machine's load affects both alike. Prints the median wall time of each and
their ratio (target: `optreg list` at most 0.3x of `import torch`), and checks that the
listing process imported neither torch nor any builtin implementation module and read
each installed distribution's metadata once (issue 26's goal: 1 parse per distribution;
with the plugins/ adapters installed, ~700 parses in all before it).

    python benchmarks/bench_list.py [--runs 9]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from bench_import import compile_optreg  # benchmarks/ is on sys.path when run as a script

LIST = """
import collections, contextlib, io, json, sys
import importlib_metadata
from optreg import cli
parses, alive = collections.Counter(), []
if "--count" in sys.argv:  # not in the timed runs
    read = importlib_metadata.Distribution.metadata.fget
    def counting(dist):
        parses[id(dist)] += 1
        alive.append(dist)  # held: no id reused
        return read(dist)
    importlib_metadata.Distribution.metadata = property(counting)
with contextlib.redirect_stdout(io.StringIO()):
    rc = cli.main(["list"])
heavy = sorted(m for m in sys.modules if m.partition(".")[0] in ("torch", "bitsandbytes")
               or (m.startswith("optreg.builtin.")))
report = {"rc": rc, "heavy": heavy, "dists": len(parses), "parses": sum(parses.values()),
          "most": max(parses.values(), default=0)}
print(json.dumps(report), file=sys.stderr)
"""


def _time(argv: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, out.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    compile_optreg()
    list_cmd = [sys.executable, "-c", LIST]
    torch_cmd = [sys.executable, "-c", "import torch"]
    _time(list_cmd), _time(torch_cmd)  # warm the file cache for both
    lists: list[float] = []
    torches: list[float] = []
    report = ""
    for _ in range(args.runs):
        seconds, report = _time(list_cmd)
        lists.append(seconds)
        torches.append(_time(torch_cmd)[0])
    facts = json.loads(report.strip().splitlines()[-1])
    counted = json.loads(_time([*list_cmd, "--count"])[1].strip().splitlines()[-1])
    t_list, t_torch = statistics.median(lists), statistics.median(torches)
    print(f"runs: {args.runs} each, interleaved")
    print(f"optreg list           median {1000 * t_list:8.1f} ms")
    print(f'python -c "import torch" median {1000 * t_torch:8.1f} ms')
    print(f"ratio list / import torch: {t_list / t_torch:.3f}x (target <= 0.3x)")
    print(f"exit status {facts['rc']}; heavy modules imported by list: {facts['heavy'] or 'none'}")
    print(
        f"metadata parses: {counted['parses']} for {counted['dists']} distributions, at most "
        f"{counted['most']} of one (target 1)"
    )


if __name__ == "__main__":
    main()
