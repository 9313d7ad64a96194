"""Reach: the names optreg resolves with every plugins/ adapter installed, the kit's verdict
on each, and what discovering them costs.

Run where the adapters are installed (``tox -e plugins`` installs them all)::

    .tox/plugins/bin/python benchmarks/reach.py            # the kit over every name (minutes)
    .tox/plugins/bin/python benchmarks/reach.py --no-kit   # names and costs only

The kit counts are those of ``optreg.testing.conformance_rows`` (the tables in the adapters'
READMEs). The costs are medians of fresh interpreters, side by side in one run: ``python -c
pass`` (the floor), ``import optreg``, listing every name, and listing then resolving one
name of each adapter; after listing, no adapter's library may have been imported.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections import Counter

import optreg
from optreg.testing import conformance_rows

#: the libraries behind the adapters: listing must import none of them
LIBRARIES = (
    "pytorch_optimizer",
    "schedulefree",
    "torchao",
    "heavyball",
    "galore_torch",
    "apollo_torch",
    "lion_pytorch",
    "optimi",
    "kron_torch",
    "dadaptation",
    "bitsandbytes",
)
LIST = "import optreg; optreg.list_optimizers(); optreg.list_schedulers()"


def _median_seconds(code: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _costs(repeat: int) -> None:
    one_each = sorted(
        {e.qualified_name for e in optreg.optimizers.entries() if e.provider != "optreg"}
    )
    firsts = {}
    for q in one_each:
        firsts.setdefault(q.split(":")[0], q)
    resolve = LIST + "".join(f"; optreg.optimizers.resolve({q!r})" for q in firsts.values())
    rows = [
        ("python -c pass", "pass"),
        ("import optreg", "import optreg"),
        ("list every name", LIST),
        (f"list, then resolve {len(firsts)} names", resolve),
    ]
    floor = None
    print(f"\ncost (median of {repeat} fresh interpreters)")
    print(f"{'':36} {'seconds':>8} {'over python':>12}")
    for label, code in rows:
        seconds = _median_seconds(code, repeat)
        floor = seconds if floor is None else floor
        print(f"{label:36} {seconds:8.3f} {seconds - floor:+12.3f}")
    probe = LIST + f"; import sys; print([m for m in {LIBRARIES!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    print(f"adapter libraries imported by listing: {out.stdout.strip()}")


def main() -> int:
    """Print the reach table and the costs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-kit", action="store_true", help="skip the conformance kit")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    entries = [*optreg.optimizers.entries(), *optreg.schedulers.entries()]
    providers = sorted({e.provider for e in entries})
    print(f"{'provider':28} {'names':>6}" + ("" if args.no_kit else "  kit verdict"))
    total: Counter[str] = Counter()
    for provider in providers:
        names = [e for e in entries if e.provider == provider]
        if args.no_kit:
            print(f"{provider:28} {len(names):6}")
            continue
        counts = Counter(r.status for r in conformance_rows([provider]))
        total.update(counts)
        verdict = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        print(f"{provider:28} {len(names):6}  {verdict}")
    print(f"{'all':28} {len(entries):6}")
    if not args.no_kit:
        passes = total["passes"]
        print(
            f"\nreach: {len(entries)} names; {passes} ({passes / len(entries):.1%}) pass every "
            f"check; {passes + total['passes, with gaps']} "
            f"({(passes + total['passes, with gaps']) / len(entries):.1%}) pass every check "
            "that applies"
        )
    _costs(args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
