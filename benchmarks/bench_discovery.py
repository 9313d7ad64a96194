"""Discovery over 1,000 installed plugin distributions vs a bare entry-point scan.

Builds N synthetic distributions (``*.dist-info`` with METADATA and
entry_points.txt, 2 entry points each, plus the module each one points to) in a
temporary directory, then, in ONE subprocess with that directory on sys.path,
alternately measures

* a bare ``importlib_metadata.entry_points()`` scan, and
* optreg's first ``get_optimizer("adamw", ...)`` in a fresh ``optreg.Catalog()``
  (scan + builtin hook plugins + registry build + resolve + construct),

clearing importlib_metadata's path cache before each, and prints the median ratio
(target <= 1.5x) and whether any plugin module got imported (target: none).

    python benchmarks/bench_discovery.py [--dists 1000] [--reps 9]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, statistics, sys, time
import torch
import importlib_metadata
import optreg

params = [torch.nn.Parameter(torch.zeros(4))]
torch.optim.AdamW(params, lr=1e-3)  # torch's own first-optimizer cost (imports torch._dynamo)

def clear():
    importlib_metadata.FastPath.__new__.cache_clear()

def bare():
    clear()
    t = time.perf_counter(); eps = importlib_metadata.entry_points(); n = len(eps.select(group="optreg.optimizers"))
    return time.perf_counter() - t, n

def ours():
    clear()
    with optreg.Catalog():  # a fresh catalog discovers on first use
        t = time.perf_counter(); optreg.get_optimizer("adamw", params, lr=1e-3)
        return time.perf_counter() - t

# the very first call also pays for importing pluggy and the builtin plugin modules
first_bare, n = bare()
first_ours = ours()
b, o = [], []
for _ in range(REPS):
    b.append(bare()[0]); o.append(ours())
plugin_mods = [m for m in sys.modules if m.startswith("synthplug_")]
print(json.dumps({"n": n, "first_bare": first_bare, "first_ours": first_ours,
                  "bare": statistics.median(b), "ours": statistics.median(o),
                  "names": len(optreg.list_optimizers()), "imported": plugin_mods}))
"""


def make_site(root: Path, n: int) -> None:
    for i in range(n):
        name = f"synthplug-{i:04d}"
        mod = f"synthplug_{i:04d}"
        d = root / f"{mod}-1.0.dist-info"
        d.mkdir()
        (d / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        (d / "entry_points.txt").write_text(
            f"[optreg.optimizers]\nopt_{i:04d} = {mod}:Opt\n\n"
            f"[optreg.schedulers]\nsched_{i:04d} = {mod}:get_schedule\n"
        )
        (root / f"{mod}.py").write_text("raise RuntimeError('plugin module imported')\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dists", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        make_site(Path(tmp), args.dists)
        env = {**os.environ, "PYTHONPATH": tmp + os.pathsep + os.environ.get("PYTHONPATH", "")}
        out = subprocess.run(
            [sys.executable, "-c", CHILD.replace("REPS", str(args.reps))],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    res = json.loads(out.stdout)
    ratio = res["ours"] / res["bare"]
    first = res["first_ours"] / res["first_bare"]
    print(f"{args.dists} synthetic distributions, {res['n']} optimizer entry points seen")
    print(f"bare importlib_metadata.entry_points(): median {res['bare'] * 1000:.1f} ms")
    print(f"optreg first get_optimizer('adamw'):     median {res['ours'] * 1000:.1f} ms")
    print(
        f"ratio: {ratio:.2f}x (target <= 1.5x); very first call incl. pluggy import: {first:.2f}x"
    )
    print(
        f"optimizer names listed: {res['names']}; plugin modules imported: {res['imported'] or 'none'}"
    )
    print("PASS" if ratio <= 1.5 and not res["imported"] else "FAIL")


if __name__ == "__main__":
    main()
