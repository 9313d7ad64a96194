"""Reach: the names optreg resolves with every plugins/ adapter installed, the kit's verdict
on each, and what discovering them costs.

Run where the adapters are installed (``tox -e plugins`` installs them all; timm's adapter
lives in ``plugins-timm``, on another torch, and ``--with`` adds the names of such an env)::

    .tox/plugins/bin/python benchmarks/reach.py --with .tox/plugins-timm/bin/python
    .tox/plugins/bin/python benchmarks/reach.py --no-kit   # names and costs only

The kit counts are those of ``optreg.testing.conformance_rows`` (the tables in the adapters'
READMEs); names whose conformance metadata declares a ``device`` (CUDA, XLA, NPU) are
counted apart too, since the kit's problem runs on the CPU. The costs are medians of
fresh interpreters, side by side in one run: ``python -c pass`` (the floor), ``import
optreg``, listing every name, listing then resolving one name of each adapter, and the
``optreg list`` command; after listing, no adapter's library may have been imported.
"""

from __future__ import annotations

import argparse
import json
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


def _median_seconds(argv: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, *argv], check=True, capture_output=True)
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
        ("python -c pass", ["-c", "pass"]),
        ("import optreg", ["-c", "import optreg"]),
        ("list every name", ["-c", LIST]),
        (f"list, then resolve {len(firsts)} names", ["-c", resolve]),
        ("optreg list (the command)", ["-m", "optreg", "list"]),
    ]
    floor = None
    print(f"\ncost (median of {repeat} fresh interpreters)")
    print(f"{'':36} {'seconds':>8} {'over python':>12}")
    for label, argv in rows:
        seconds = _median_seconds(argv, repeat)
        floor = seconds if floor is None else floor
        print(f"{label:36} {seconds:8.3f} {seconds - floor:+12.3f}")
    probe = LIST + f"; import sys; print([m for m in {LIBRARIES!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    print(f"adapter libraries imported by listing: {out.stdout.strip()}")


def _tally(kit: bool) -> dict[str, dict[str, object]]:
    """``{provider: {"names": n, "counts": {status: n}, "device": n}}`` for this
    interpreter's names; ``device`` counts those needing a device beyond the CPU."""
    entries = [*optreg.optimizers.entries(), *optreg.schedulers.entries()]
    out: dict[str, dict[str, object]] = {}
    for provider in sorted({e.provider for e in entries}):
        names = sum(e.provider == provider for e in entries)
        rows = conformance_rows([provider]) if kit else []
        out[provider] = {
            "names": names,
            "counts": dict(Counter(r.status for r in rows)),
            "device": sum(bool(r.device) for r in rows),
        }
    return out


def _from(python: str, kit: bool) -> dict[str, dict[str, object]]:
    """The tally of another environment (its last stdout line; libraries print too)."""
    command = [python, __file__, "--json", *([] if kit else ["--no-kit"])]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    tally: dict[str, dict[str, object]] = json.loads(out.stdout.strip().splitlines()[-1])
    return tally


def main() -> int:
    """Print the reach table and the costs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-kit", action="store_true", help="skip the conformance kit")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--with",
        dest="others",
        action="append",
        default=[],
        metavar="PYTHON",
        help="another environment's interpreter: its providers that this one lacks count too",
    )
    parser.add_argument("--json", action="store_true", help="print the tally as JSON only")
    args = parser.parse_args()
    kit = not args.no_kit
    tally = _tally(kit)
    if args.json:
        print(json.dumps(tally))
        return 0
    where = dict.fromkeys(tally, "")
    for python in args.others:
        for provider, row in _from(python, kit).items():
            if provider not in tally:
                tally[provider], where[provider] = row, f"  (from {python})"
    print(f"{'provider':28} {'names':>6}" + ("  kit verdict" if kit else ""))
    total: Counter[str] = Counter()
    device = 0
    for provider, row in sorted(tally.items()):
        counts: dict[str, int] = row["counts"]  # type: ignore[assignment]
        total.update(counts)
        device += int(row["device"])  # type: ignore[call-overload]
        verdict = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        print(f"{provider:28} {row['names']:6}  {verdict}{where[provider]}")
    names = sum(int(row["names"]) for row in tally.values())  # type: ignore[call-overload]
    print(f"{'all':28} {names:6}")
    if kit:
        strict = total["passes"]
        applies = strict + total["passes, with gaps"]
        print(
            f"\nreach: {names} names; {strict} ({strict / names:.1%}) pass every check; "
            f"{applies} ({applies / names:.1%}) pass every check that applies"
        )
        for status in ("fails", "not checked", "unavailable"):
            print(f"  {status}: {total[status]}")
        # a name that needs CUDA, XLA or an NPU is never checked: the kit runs on the CPU
        cpu = names - device
        print(
            f"{device} names need a device beyond the CPU (CUDA, XLA, NPU), which the kit "
            f"does not check; of the other {cpu}, {strict} ({strict / cpu:.1%}) pass every check"
        )
    _costs(args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
