"""The catalogue: one table to filter and sort, and one page per name.

Every name of the registry where the site is built (the builtins and each plugins/
adapter installed beside the docs env), and the names of an adapter that cannot be
installed there (timm, on its own torch) read from the tables its README publishes.
Used by ``tools/docs_gen.py``; ``python tools/docs_catalogue.py`` prints what it finds.
"""

from __future__ import annotations

import html
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Name:
    """One row of the catalogue and the page behind it."""

    kind: str
    name: str  # as listed: the plain name, or dist:name where another provider has it
    qualified: str
    description: str
    provider: str
    available: str
    install: str
    kit: str = "not in a kit table"
    kit_detail: str = ""
    caps: dict[str, tuple[str, str]] | None = None
    parameters: list[str] | None = None
    aliases: tuple[str, ...] = ()
    policies: list[str] = field(default_factory=list)
    doc: str = ""

    @property
    def slug(self) -> str:
        return self.name.replace(":", "--")

    @property
    def page(self) -> str:
        return f"names/{self.kind}/{self.slug}.md"

    @property
    def supports(self) -> str:
        """The capabilities measured to pass, as words ("compile bf16 ddp fsdp2")."""
        if self.kind != "optimizer":
            return ""
        if self.caps is None:
            return "unknown"
        return " ".join(c for c, (status, _) in self.caps.items() if status == "pass") or "none"


def _kit_tables() -> dict[tuple[str, str, str], tuple[str, str]]:
    """``(adapter folder, kind, name) -> (status, detail)`` from each README's kit table."""
    from optreg.testing._table import END, START

    out = {}
    for readme in sorted(ROOT.glob("plugins/*/README.md")):
        text = readme.read_text(encoding="utf-8")
        start, end = text.find(START), text.find(END)
        for line in text[start:end].splitlines() if start >= 0 else ():
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            if len(cells) >= 3 and cells[0] in ("optimizer", "scheduler"):
                detail = cells[3] if len(cells) > 3 else ""
                out[(readme.parent.name, cells[0], cells[1].strip("`"))] = (cells[2], detail)
    return out


def _capability_tables() -> dict[tuple[str, str], dict[str, tuple[str, str]]]:
    """``(provider, name) -> {capability: (status, detail)}``: the builtins' packaged
    table and each adapter's README table."""
    from optreg.builtin.capabilities import CAPABILITIES, parse, table

    out = {
        ("optreg", name): {c: (row[c][0], row[c][1]) for c in CAPABILITIES}
        for name, row in table()["optimizers"].items()
    }
    for readme in sorted(ROOT.glob("plugins/*/README.md")):
        for name, row in parse(readme.read_text(encoding="utf-8"))["optimizers"].items():
            out[(readme.parent.name, name)] = {c: (row[c][0], row[c][1]) for c in CAPABILITIES}
    return out


def _install(provider: str, available: bool, reason: str | None) -> str:
    if provider == "optreg":
        return "included with optreg" if available else (reason or "")
    folder = ROOT / "plugins" / provider
    checkout = (
        f"pip install -e plugins/{provider}" if folder.is_dir() else f"pip install {provider}"
    )
    return checkout + ("" if available else f" ({reason})")


def names() -> list[Name]:
    """Every name, installed or published, sorted by kind and name."""
    import optreg
    from optreg.cli._names import _listing, _parameters, _policies
    from optreg.testing._table import conformance_rows

    kits = _kit_tables()
    caps = _capability_tables()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for row in conformance_rows(["optreg"]):
            kits[("optreg", row.kind, row.name)] = (row.status, row.detail)
    out: list[Name] = []
    seen: set[tuple[str, str, str]] = set()
    for kind, registry, lookup in (
        ("optimizer", optreg.optimizers, optreg.optimizer_info),
        ("scheduler", optreg.schedulers, optreg.scheduler_info),
    ):
        for row in _listing(registry):
            info = lookup(row["qualified_name"])
            entry = registry.resolve(row["qualified_name"])
            provider = info.provider
            kit, detail = kits.get((provider, kind, entry.name), ("not in a kit table", ""))
            out.append(
                Name(
                    kind=kind,
                    name=row["name"],
                    qualified=info.qualified_name,
                    description=info.description,
                    provider=f"{provider} {info.version or ''}".strip(),
                    available="yes" if info.available else f"no: {info.reason}",
                    install=_install(provider, info.available, info.reason),
                    kit=kit,
                    kit_detail=detail,
                    caps=caps.get((provider, entry.name)) if kind == "optimizer" else None,
                    parameters=_parameters(info),
                    aliases=info.aliases,
                    policies=_policies(info),
                    doc=info.doc,
                )
            )
            seen.add((provider, kind, entry.name))
    # an adapter not installed here: the names its README publishes (qualified where the
    # plain name is another provider's, as `optreg list` would show them)
    listed = {(n.kind, n.name) for n in out}
    for (provider, kind, name), (kit, detail) in sorted(kits.items()):
        if (provider, kind, name) in seen or provider == "optreg":
            continue
        qualified = f"{provider.replace('-', '_')}:{name}"
        out.append(
            Name(
                kind=kind,
                name=qualified if (kind, name) in listed else name,
                qualified=qualified,
                description=f"(from {provider}'s published tables)",
                provider=provider,
                available="not installed where this site was built",
                install=_install(provider, True, None),
                kit=kit,
                kit_detail=detail,
                caps=caps.get((provider, name)) if kind == "optimizer" else None,
            )
        )
    return sorted(out, key=lambda n: (n.kind, n.name))


def _e(text: object) -> str:
    """Text as it is: HTML escaped, and square brackets kept from reading as links."""
    plain = html.escape(" ".join(str(text).split()))
    return plain.replace("[", "&#91;").replace("]", "&#93;")


def catalogue(rows: list[Name]) -> str:
    """The catalogue page: a table the site's script turns into one that filters and sorts."""
    from optreg.builtin.capabilities import CAPABILITIES

    body = []
    for n in rows:
        body.append(
            "<tr>"
            f'<td><a href="../{n.page[:-3]}/">{_e(n.name)}</a></td>'
            f"<td>{n.kind}</td><td>{_e(n.description)}</td><td>{_e(n.provider)}</td>"
            f"<td>{'yes' if n.available == 'yes' else 'no'}</td>"
            f"<td>{_e(n.supports)}</td><td>{_e(n.kit)}</td>"
            "</tr>"
        )
    optimizers = sum(n.kind == "optimizer" for n in rows)
    return "\n".join(
        [
            "---",
            "hide:",
            "  - toc",
            "---",
            "",
            "# The catalogue",
            "",
            f"{optimizers} optimizers and {len(rows) - optimizers} schedules of optreg and its "
            "adapters. **Type** in the box to filter (a name, a provider, a capability such "
            "as `fsdp2`), **click** a column's title to sort, and a name for its page "
            "(parameters, the capability verdicts with their reasons, how to install it, "
            "an example).",
            "",
            f"**supports**: the capabilities ({', '.join(CAPABILITIES)}) "
            "[measured](guides/capabilities.md) to pass (`unknown`: never measured). "
            "**kit**: the verdict of the [conformance kit](guides/kit.md), optreg's own "
            "checks of a name's behaviour. For the same answers in a terminal: "
            "`optreg list --supports fsdp2`, `optreg info NAME`.",
            "",
            '<div class="optreg-catalogue" markdown="0">',
            '<table id="optreg-catalogue">',
            "<thead><tr><th>name</th><th>kind</th><th>description</th><th>provider</th>"
            "<th>available</th><th>supports</th><th>kit</th></tr></thead>",
            "<tbody>",
            *body,
            "</tbody></table></div>",
            "",
        ]
    )


def page(n: Name) -> str:
    """One name's page."""
    call = "get_optimizer" if n.kind == "optimizer" else "get_scheduler"
    first = "model" if n.kind == "optimizer" else "optimizer"
    reach = n.name if ":" not in n.name else n.qualified
    facts = [
        ("kind", n.kind),
        ("qualified name", f"`{n.qualified}`"),
        ("aliases", ", ".join(f"`{a}`" for a in n.aliases) or "none"),
        ("provider", _e(n.provider)),
        ("available", _e(n.available)),
        ("install", _e(n.install)),
        (
            "kit",
            _e(n.kit)
            + (f" ({_e(n.kit_detail)})" if n.kit_detail else "")
            + " ([what the kit checks](../../guides/kit.md))",
        ),
    ]
    facts += [("policy", _e(p)) for p in n.policies]
    lines = [f"# {n.name}", "", _e(n.description), "", "| about | |", "|---|---|"]
    lines += [f"| {k} | {v.replace('|', '&#124;')} |" for k, v in facts]
    lines += ["", "## Example", "", "```python", "import optreg", ""]
    if n.kind == "optimizer":
        lines.append(f'optimizer = optreg.{call}("{reach}", {first})')
    else:
        lines.append(
            f'scheduler = optreg.{call}("{reach}", {first}, num_warmup_steps=100, '
            "num_training_steps=1000)"
        )
    lines += ["```", "", "## Parameters", ""]
    if n.parameters is None:
        lines.append(
            "Not importable where this site was built: see `optreg info` after installing."
        )
    else:
        lines += ["```text", *(n.parameters or ["(none)"]), "```"]
    if n.doc:
        lines += ["", _e(n.doc)]
    if n.kind == "optimizer":
        lines += ["", "## Capabilities", ""]
        if n.caps is None:
            lines.append("Never measured ([how they are](../../guides/capabilities.md)).")
        else:
            lines += ["| capability | verdict | detail |", "|---|---|---|"]
            lines += [
                f"| {c} | {s} | {_e(d).replace('|', '&#124;') or '—'} |"
                for c, (s, d) in n.caps.items()
            ]
    lines += ["", "[All names: the catalogue](../../catalogue.md)", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    import json
    import sys

    found = names()
    if sys.argv[1:] == ["--published-fsdp2"]:  # for the browser test, in its own process
        print(json.dumps(sorted(
            n.name for n in found
            if n.available.startswith("not installed") and "fsdp2" in n.supports.split()
        )))  # fmt: skip
        sys.exit(0)
    print(f"{len(found)} names; {sum(n.caps is not None for n in found)} with capabilities")
    fsdp2 = sorted(n.name for n in found if "fsdp2" in n.supports.split())
    print(
        f"fsdp2: {len(fsdp2)}; rows matching 'fsdp2' anywhere: "
        f"{sum('fsdp2' in (n.description + n.name + n.supports).lower() for n in found)}"
    )
    print(re.sub(r"\s+", " ", catalogue(found)[:400]))
