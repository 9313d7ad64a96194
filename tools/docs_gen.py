"""The site's generated pages, written at build time by mkdocs-gen-files (``mkdocs.yml``).

* ``catalogue.md`` and ``names/KIND/NAME.md``: the catalogue table (filtered and sorted in
  the browser) and a page per name (``tools/docs_catalogue.py``).
* ``gallery.md`` and ``gallery/NAME.png``: every builtin schedule drawn by ``optreg plot``
  itself with the arguments printed under the picture, so a figure cannot disagree with
  the code.

Run by ``mkdocs build``; ``python tools/docs_gen.py`` builds both in memory and prints
what they hold.
"""

from __future__ import annotations

import contextlib
import io
import sys
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
                _command(shown, name),
                "```",
                "",
            ]
    return "\n".join(lines), images


def _command(shown: str, name: str) -> str:
    """``optreg plot ...`` as a shell command, one option per line where it is long."""
    one = f"optreg {shown} -o {name}.png"
    if len(one) <= 70:
        return one
    head, *options = shown.split(" --")
    lines = [f"optreg {head}", *(f"    --{o}" for o in options), f"    -o {name}.png"]
    return " \\\n".join(lines)


def _provider(name: str) -> str:
    import optreg

    return optreg.scheduler_info(name).provider


def main() -> None:
    import docs_catalogue
    import mkdocs_gen_files

    rows = docs_catalogue.names()
    with mkdocs_gen_files.open("catalogue.md", "w") as f:
        f.write(docs_catalogue.catalogue(rows))
    for row in rows:
        with mkdocs_gen_files.open(row.page, "w") as f:
            f.write(docs_catalogue.page(row))
    page, images = gallery()
    with mkdocs_gen_files.open("gallery.md", "w") as f:
        f.write(page)
    for name, data in images.items():
        with mkdocs_gen_files.open(f"gallery/{name}.png", "wb") as f:
            f.write(data)
    changelog = Path(__file__).resolve().parents[1] / "CHANGELOG.md"
    with mkdocs_gen_files.open("changelog.md", "w") as f:
        f.write(changelog.read_text(encoding="utf-8"))


sys.path.insert(0, str(Path(__file__).resolve().parent))  # docs_catalogue, beside this

if __name__ == "__main__":
    page, images = gallery()
    print(f"gallery: {len(images)} pictures")
elif __name__ == "<run_path>":  # mkdocs-gen-files runs the script with runpy.run_path
    main()
