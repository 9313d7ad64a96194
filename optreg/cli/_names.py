"""``optreg list`` / ``info`` / ``check``: the names, one name, and the plugins' health."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable
from typing import Any

from optreg._core import loading
from optreg._core.errors import (
    AmbiguousNameError,
    MissingDependencyError,
    UnknownNameError,
    UsageError,
)
from optreg._core.table import one_line, printable, text_table

__all__ = ["cmd_check", "cmd_info", "cmd_list"]


def _registries(kind: str | None) -> list[tuple[str, Any]]:
    from optreg._core.registry import optimizers, schedulers

    pairs = [("optimizers", optimizers), ("schedulers", schedulers)]
    return [(label, reg) for label, reg in pairs if kind in (None, label)]


def _listing(registry: Any) -> list[dict[str, Any]]:
    """Rows for ``list``: one per entry, shadowed/ambiguous ones under their qualified name."""
    rows: list[dict[str, Any]] = []
    for entry in registry.entries():
        shadowed_by = preferred_by = None
        try:
            reached = registry.resolve(entry.name)
        except AmbiguousNameError:
            state = "ambiguous"
        else:
            state = "ok" if reached is entry else "shadowed"
            if reached is not entry:
                shadowed_by = reached.qualified_name
            preferred_by = registry.preferred_by(entry.name)
        available, reason = registry.status(entry)
        rows.append(
            {
                "name": entry.name if state == "ok" else entry.qualified_name,
                "canonical_name": entry.name,
                "qualified_name": entry.qualified_name,
                "aliases": list(entry.aliases),
                "provider": entry.project,
                "version": entry.version,
                "source": entry.source,
                "target": entry.target_ref,
                "description": entry.description or entry.summary,
                "available": available,
                "reason": reason,
                "extra": entry.extra,
                "status": state,
                "shadowed_by": shadowed_by,
                "preferred_by": preferred_by,
            }
        )
    return rows


def _provider_text(row: dict[str, Any]) -> str:
    if row["source"] == "runtime":
        return "(run time)"
    return f"{row['provider']} {row['version']}" if row["version"] else row["provider"]


def _available_text(row: dict[str, Any]) -> str:
    if row["available"]:
        return "yes"
    return f"no (optreg[{row['extra']}])" if row["extra"] else "no"


def _capabilities(entry: Any) -> dict[str, Any] | None:
    """An optimizer entry's measured capabilities, with the torch they were measured
    with and where the table comes from; None: never measured (a run-time name, or a
    plugin whose README publishes no table or no row for it)."""
    from optreg.builtin.capabilities import published, row, table

    if entry.source == "builtin":
        found, torch, source = row(entry.name), table()["torch"], "optreg's packaged table"
    elif entry.source == "plugin" and entry.dist is not None:
        found = row(entry.name, entry.dist)
        torch, source = published(entry.dist)["torch"], f"{entry.project}'s README"
    else:
        return None
    if found is None:
        return None
    return {
        "verdicts": {c: dataclasses.asdict(v) for c, v in found.items()},
        "torch": torch,
        "source": source,
    }


def _supports(text: str, kind: str | None) -> list[str]:
    from optreg.builtin.capabilities import CAPABILITIES

    wanted = [c.strip() for c in text.split(",") if c.strip()]
    bad = [c for c in wanted if c not in CAPABILITIES]
    if bad or not wanted:
        raise UsageError(
            f"--supports: unknown capability {', '.join(map(repr, bad)) or repr(text)} "
            f"(measured: {', '.join(CAPABILITIES)})"
        )
    if kind == "schedulers":
        raise UsageError("--supports filters optimizers; schedulers have no capability table")
    return wanted


def cmd_list(args: argparse.Namespace) -> int:
    """``optreg list``: every name, its provider, availability and description."""
    wanted = None if args.supports is None else _supports(args.supports, args.kind)
    kind = "optimizers" if wanted is not None else args.kind
    registries = dict(_registries(kind))
    listings = {label: _listing(reg) for label, reg in registries.items()}
    unmeasured = 0
    if wanted is not None:
        rows = []
        for row, entry in zip(
            listings["optimizers"], registries["optimizers"].entries(), strict=True
        ):
            row["capabilities"] = caps = _capabilities(entry)
            unmeasured += caps is None
            if caps is not None and all(caps["verdicts"][c]["status"] == "pass" for c in wanted):
                rows.append(row)
        listings["optimizers"] = rows
    if args.json:
        print(json.dumps(listings, indent=2, default=str))
        return 0
    blocks = []
    for label, rows in listings.items():
        notes = []
        for row in rows:
            why = f" (preferred by {row['preferred_by']})" if row["preferred_by"] else ""
            if row["status"] == "shadowed":
                notes.append(f"  {row['name']}: shadowed by {row['shadowed_by']}{why}")
            elif why:
                notes.append(f"  {row['canonical_name']}: reaches {row['qualified_name']}{why}")
            elif row["status"] == "ambiguous":
                notes.append(
                    f"  {row['name']}: {row['canonical_name']!r} is ambiguous; use the qualified "
                    "name, or prefer a provider (optreg.prefer, OPTREG_PREFER, [tool.optreg] "
                    "prefer in pyproject.toml)"
                )
        table = text_table(
            ("name", "provider", "available", "description"),
            [(r["name"], _provider_text(r), _available_text(r), r["description"]) for r in rows],
        )
        if notes and not getattr(args, "conflicts", False):
            notes = [
                f"  {len(notes)} name{'s' if len(notes) != 1 else ''} shared by several "
                f"providers (listed under their dist:name); `optreg list {label} --conflicts` "
                "shows who reaches each"
            ]
        blocks.append(
            f"{label} ({len(rows)})\n{table}" + ("\n" + "\n".join(notes) if notes else "")
        )
    if wanted is not None:
        blocks.append(
            f"measured to pass {', '.join(wanted)} (`optreg info NAME` shows why, with which "
            f"torch and whose table); {unmeasured} never measured (unknown, not listed)"
        )
    print("\n\n".join(blocks))
    return 0


# -- info -------------------------------------------------------------------


def _infos(name: str, kind: str | None) -> dict[str, Any]:
    from optreg._build.api import optimizer_info, scheduler_info

    found: dict[str, Any] = {}
    unknown: list[UnknownNameError] = []
    lookups: list[tuple[str, Callable[[str], Any]]] = [
        ("optimizer", optimizer_info),
        ("scheduler", scheduler_info),
    ]
    for label, lookup in lookups:
        if kind not in (None, label):
            continue
        try:
            found[label] = lookup(name)
        except UnknownNameError as e:
            unknown.append(e)
        except AmbiguousNameError:  # every candidate, each under its dist:name
            registry = _registries(f"{label}s")[0][1]
            key = name.strip().lower().replace("-", "_")
            for entry in registry.entries():
                if entry.name == key or key in entry.aliases:
                    found[f"{label} {entry.qualified_name}"] = lookup(entry.qualified_name)
        except (ValueError, TypeError) as e:  # a malformed name ('', 'a b')
            raise UsageError(str(e)) from e
    if found:
        return found
    if kind is not None:
        other = "scheduler" if kind == "optimizer" else "optimizer"
        registry = _registries(f"{other}s")[0][1]
        if name in registry:
            raise UsageError(
                f"unknown {kind} {name!r}; {name!r} is a{'n' if other[0] == 'o' else ''} "
                f"{other}: `optreg info {name} --kind {other}` (or leave --kind out)"
            )
    if len(unknown) == 1:
        raise unknown[0]
    suggestions = list(dict.fromkeys(s for e in unknown for s in e.suggestions))[:3]
    hint = f"; did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions else ""
    raise UsageError(f"unknown optimizer or scheduler {name!r}{hint} (see `optreg list`)")


def _info_text(info: Any) -> str:
    provider = f"{info.provider} {info.version}" if info.version else info.provider
    available = "yes" if info.available else f"no: {info.reason}"
    fields = [
        ("qualified name", info.qualified_name),
        ("aliases", ", ".join(info.aliases) or "(none)"),
        ("provider", provider),
        ("target", info.target),
        ("available", available),
        ("required", ", ".join(info.required_args) or "(none)"),
    ]
    fields.extend(
        (k, _plain_value(v))
        for k, v in sorted(info.metadata.items())
        if k != "conformance" and _plain_value(v) is not None
    )
    policies = _policies(info)
    if info.kind == "optimizer":
        fields.append(("capabilities", _capability_text(info)))
    width = max(len(k) for k, _ in [*fields, ("parameters", "")]) + 1
    lines = [f"{info.name}  ({info.kind})"]
    lines += [f"  {(k + ':').ljust(width)} {one_line(v)}" for k, v in fields]
    lines += [f"  {'policies:'.ljust(width)} {policies[0]}"] if policies else []
    lines += [f"  {''.ljust(width)} {p}" for p in policies[1:]]
    parameters = _parameters(info)
    if parameters is None:
        lines.append(f"  {'parameters:'.ljust(width)} (unknown until the target can be imported)")
    else:
        lines.append(f"  {'parameters:'.ljust(width)} {parameters[0] if parameters else '(none)'}")
        lines += [f"  {''.ljust(width)} {p}" for p in parameters[1:]]
    if info.doc:
        lines += ["", *(f"  {line}" for line in printable(info.doc).splitlines())]
    return "\n".join(lines)


def _plain_value(value: Any) -> str | None:
    """A metadata value as text: numbers, strings, booleans and lists of them."""
    if isinstance(value, (str, int, float, bool)):
        return str(value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float)) for v in value):
        return ", ".join(map(str, value))
    return None


def _policies(info: Any) -> list[str]:
    """The name's policies in words: its traits, and an optimizer's clip policy."""
    out = list(info.traits.shown())
    if info.kind == "optimizer" and info.available:
        from optreg._core import loading
        from optreg._core.registry import optimizers

        try:
            clip = loading.contract(optimizers.resolve(info.qualified_name)).clip
        except Exception:  # a broken plugin: nothing to say here (optreg check says it)
            clip = None
        if clip is not None:
            out.append(f"clipping: {clip.reason}")
    return out


def _parameters(info: Any) -> list[str] | None:
    """The factory's parameters, one per line (``name: type = default``), without the
    optimizer / params it is given; None where the target cannot be imported."""
    import inspect

    from optreg._core.registry import optimizers, schedulers

    if not info.available:
        return None
    registry = optimizers if info.kind == "optimizer" else schedulers
    try:
        factory = registry.load(registry.resolve(info.qualified_name))
        signature = inspect.signature(factory)
    except Exception:  # a broken plugin, or a callable without a signature
        return None
    out = []
    for i, param in enumerate(signature.parameters.values()):
        if i == 0 and param.name in ("params", "optimizer"):
            continue
        text = str(param.replace(annotation=inspect.Parameter.empty))
        if param.annotation is not inspect.Parameter.empty:
            hint = param.annotation if isinstance(param.annotation, str) else None
            hint = hint or inspect.formatannotation(param.annotation)
            name, _, default = text.partition("=")
            text = f"{name}: {hint}" + (f" = {default}" if default else "")
        out.append(text)
    return out


def _info_capabilities(info: Any) -> dict[str, Any] | None:
    from optreg._core.registry import optimizers

    return _capabilities(optimizers.resolve(info.qualified_name))


def _capability_text(info: Any) -> str:
    caps = _info_capabilities(info)
    if caps is None:
        return "unknown (never measured)"
    shown = "; ".join(
        f"{c} {v['status']}" + (f" ({v['detail']})" if v["detail"] else "")
        for c, v in caps["verdicts"].items()
    )
    return f"{shown} [torch {caps['torch']}, {caps['source']}]"


def cmd_info(args: argparse.Namespace) -> int:
    """``optreg info NAME``: signature, defaults, required arguments, provider, doc."""
    infos = _infos(args.name, args.kind)
    if args.json:
        out = {
            kind: {f.name: getattr(info, f.name) for f in dataclasses.fields(info)}
            for kind, info in infos.items()
        }
        for kind, item in out.items():
            item["metadata"] = dict(item["metadata"])
            item["traits"] = item["traits"].to_json()
            if kind == "optimizer":
                item["capabilities"] = _info_capabilities(infos[kind])
        print(json.dumps(out, indent=2, default=repr))
    else:
        shared = [k for k in infos if " " in k]
        if shared:
            print(
                f"{args.name!r} is provided by {len(shared)} plugins; use a dist:name below, "
                "or prefer a provider (optreg.prefer, OPTREG_PREFER, [tool.optreg] prefer "
                "in pyproject.toml)\n"
            )
        print("\n\n".join(_info_text(info) for info in infos.values()))
    return 0


# -- check ------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    """``optreg check``: load every entry; exit 1 if a plugin or an entry is broken."""
    from optreg._plugins.discovery import problems

    broken: list[str] = [f"plugin {p}" for p in problems()]
    unavailable: list[str] = []
    warnings: list[str] = []
    counts: dict[str, int] = {}
    for label, registry in _registries(None):
        entries = registry.entries()
        counts[label] = len(entries)
        for entry in entries:
            where = f"{registry.kind} {entry.qualified_name}"
            try:
                # loads it and reads its signature and contract: a target that is not
                # callable, or whose signature raises, is a PluginLoadError
                loading.contract(entry)
            except MissingDependencyError as e:
                unavailable.append(f"{where}: {one_line(str(e))}")
            except Exception as e:
                broken.append(f"{where}: {one_line(f'{type(e).__name__}: {e}')}")
        shadowed, ambiguous = registry.conflicts()
        for winner, loser in shadowed:
            warnings.append(
                f"{registry.kind} {loser.name!r} from {loser.provider} is shadowed by "
                f"{winner.qualified_name}; reachable only as {loser.qualified_name!r}"
            )
        for name, entries_ in ambiguous:
            warnings.append(
                f"{registry.kind} name {name!r} is ambiguous (provided by "
                + ", ".join(sorted(e.qualified_name for e in entries_))
                + "); use a qualified name"
            )
    for line in broken:
        print(f"BROKEN       {line}")
    for line in warnings:
        print(f"WARNING      {line}")
    for line in unavailable:
        print(f"UNAVAILABLE  {line}")
    total = sum(counts.values())
    summary = ", ".join(f"{n} {label}" for label, n in counts.items())
    print(
        f"checked {total} entries ({summary}): {len(broken)} broken, "
        f"{len(warnings)} warning{'' if len(warnings) == 1 else 's'}, {len(unavailable)} unavailable (optional dependency missing)"
    )
    if broken or (args.strict and warnings):
        return 1
    return 0


# -- parser and entry point ---------------------------------------------------
