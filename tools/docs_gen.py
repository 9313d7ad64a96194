"""The site's generated pages, written at build time by mkdocs-gen-files (``mkdocs.yml``).

* ``catalogue.md``: every optimizer and scheduler name installed where the site is built
  (the builtins and each plugins/ adapter present), from the registry itself: provider,
  signature, required arguments, availability (with the install hint), the kit's verdict
  (the builtins' measured now; an adapter's read from the table its README keeps, which
  the plugins env checks) and the measured capability row.
* ``gallery.md`` and ``gallery/NAME.png``: every builtin schedule drawn by ``optreg plot``
  itself with the arguments printed under the picture, so a figure cannot disagree with
  the code.

Run by ``mkdocs build``; ``python tools/docs_gen.py`` builds both in memory and prints
their sizes.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Each builtin schedule's picture: the arguments of ``optreg plot`` beyond the name.
WARMUP, TRAINING = 10, 100
GALLERY: dict[str, list[str]] = {
    "cosine_with_min_lr": ["--kw", "min_lr_rate=0.1"],
    "cosine_warmup_with_min_lr": ["--kw", "min_lr_rate=0.1"],
    "cosine_with_restarts": ["--kw", "num_cycles=3"],
    "polynomial": ["--kw", "power=2.0"],
    "warmup_stable_decay": ["--kw", "num_decay_steps=30"],
    "sequence": [
        "--kw",
        "phases=[{'name': 'constant_with_warmup', 'steps': 0.3, 'num_warmup_steps': 0.33}, "
        "{'name': 'cosine', 'steps': 0.7}]",
    ],
}
#: Not drawn alone: it reports an Adafactor optimizer's own learning rate.
NOT_DRAWN = {"adafactor": "it reports the learning rate an Adafactor optimizer computes"}


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _kit_verdicts() -> dict[tuple[str, str, str], tuple[str, str]]:
    """``(provider, kind, name) -> (status, detail)``: the builtins measured now; each
    adapter's from its README table."""
    from optreg.testing._table import START, conformance_rows, parse

    out: dict[tuple[str, str, str], tuple[str, str]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for row in conformance_rows(["optreg"]):
            out[("optreg", row.kind, row.name)] = (row.status, row.detail)
    for readme in sorted(ROOT.glob("plugins/*/README.md")):
        text = readme.read_text(encoding="utf-8")
        if START in text:
            for kind, name, status in parse(text):
                out[(readme.parent.name, kind, name)] = (status, "")
    return out


def _capabilities() -> dict[tuple[str, str], list[str]]:
    """``(provider, name) -> [status per capability]``: the builtins' packaged table and
    each adapter's README table."""
    from optreg.builtin.capabilities import CAPABILITIES, table
    from optreg.testing._table import CAP_START, parse_capabilities

    out = {
        ("optreg", name): [row[c][0] for c in CAPABILITIES]
        for name, row in table()["optimizers"].items()
    }
    for readme in sorted(ROOT.glob("plugins/*/README.md")):
        text = readme.read_text(encoding="utf-8")
        if CAP_START in text:
            for name, statuses in parse_capabilities(text).items():
                out[(readme.parent.name, name)] = statuses
    return out


def catalogue() -> str:
    """The catalogue page."""
    import optreg
    from optreg.builtin.capabilities import CAPABILITIES

    kit, caps = _kit_verdicts(), _capabilities()
    lines = [
        "# The catalogue",
        "",
        "Every name installed where this site was built, read from the registry at build",
        "time (`tools/docs_gen.py`). **kit**: the conformance kit's verdict (see",
        "[Checking a plugin with the kit](guides/kit.md)); **capabilities**: "
        + ", ".join(CAPABILITIES)
        + " as measured (see [Measured capabilities](guides/capabilities.md)); a name "
        "never measured shows `unknown`.",
        "",
    ]
    for kind, names, info in (
        ("optimizer", optreg.list_optimizers(), optreg.optimizer_info),
        ("scheduler", optreg.list_schedulers(), optreg.scheduler_info),
    ):
        infos = [info(n) for n in names]
        providers = sorted({i.provider for i in infos}, key=lambda p: (p != "optreg", p))
        lines += [f"## {kind.capitalize()}s ({len(infos)})", ""]
        for provider in providers:
            mine = [i for i in infos if i.provider == provider]
            version = mine[0].version or ""
            lines += [f"### {provider} {version} ({len(mine)} {kind}s)", ""]
            header = "| name | signature | required | available | kit |"
            rule = "| --- | --- | --- | --- | --- |"
            if kind == "optimizer":
                header += " capabilities |"
                rule += " --- |"
            lines += [header, rule]
            for i in mine:
                status, _ = kit.get((provider, kind, i.name), ("not in a kit table", ""))
                avail = "yes" if i.available else f"no: {i.reason}"
                sig = f"`{_cell(i.signature)}`" if i.signature else "(not importable here)"
                required = ", ".join(i.required_args) or "—"
                row = f"| `{i.name}` | {sig} | {required} | {_cell(avail)} | {_cell(status)} |"
                if kind == "optimizer":
                    got = caps.get((provider, i.name))
                    row += (
                        " "
                        + (
                            ", ".join(f"{c} {s}" for c, s in zip(CAPABILITIES, got, strict=True))
                            if got
                            else "unknown"
                        )
                        + " |"
                    )
                lines.append(row)
            lines.append("")
    return "\n".join(lines)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def gallery() -> tuple[str, dict[str, bytes]]:
    """The gallery page and its pictures, drawn by ``optreg plot``."""
    from optreg import list_schedulers
    from optreg.cli import main

    lines = [
        "# The schedule gallery",
        "",
        "Every builtin schedule, drawn at build time by `optreg plot` itself with the",
        "command under each picture (see [Schedules](guides/schedules.md) for what each",
        "argument means). The y axis is the learning rate of a base `lr` of 1: the multiplier.",
        "",
    ]
    images: dict[str, bytes] = {}
    builtins = [n for n in list_schedulers() if _provider(n) == "optreg"]
    with tempfile.TemporaryDirectory() as tmp:
        for name in builtins:
            if name in NOT_DRAWN:
                lines += [f"## {name}", "", f"Not drawn alone: {NOT_DRAWN[name]}.", ""]
                continue
            argv = [
                "plot",
                name,
                "--num-warmup-steps",
                str(WARMUP),
                "--num-training-steps",
                str(TRAINING),
                *GALLERY.get(name, []),
            ]
            out = Path(tmp) / f"{name}.png"
            with _quiet():
                code = main([*argv, "-o", str(out)])
            if code != 0:
                raise RuntimeError(f"optreg {' '.join(argv)} exited {code}")
            images[name] = out.read_bytes()
            shown = " ".join(a if " " not in a and "[" not in a else f'"{a}"' for a in argv)
            lines += [
                f"## {name}",
                "",
                f"![{name}: the learning rate over {TRAINING} steps](gallery/{name}.png)",
                "",
                "```bash",
                f"optreg {shown} -o {name}.png",
                "```",
                "",
            ]
    return "\n".join(lines), images


def _provider(name: str) -> str:
    import optreg

    return optreg.scheduler_info(name).provider


def main() -> None:
    import mkdocs_gen_files

    with mkdocs_gen_files.open("catalogue.md", "w") as f:
        f.write(catalogue())
    page, images = gallery()
    with mkdocs_gen_files.open("gallery.md", "w") as f:
        f.write(page)
    for name, data in images.items():
        with mkdocs_gen_files.open(f"gallery/{name}.png", "wb") as f:
            f.write(data)


if __name__ == "__main__":
    page, images = gallery()
    print(f"catalogue: {len(catalogue())} characters; gallery: {len(images)} pictures")
elif __name__ == "<run_path>":  # mkdocs-gen-files runs the script with runpy.run_path
    main()
