"""Configs as plain data: `load_config()` reads JSON, YAML or TOML (a file or a
string), and `plain_config()` turns those or an OmegaConf / Hydra object into plain
dicts, lists, strings and numbers, which round-trip through every one of those formats.
`optreg._build.spec.Spec` reads the result.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optreg._core.errors import MissingDependencyError, close_matches

if TYPE_CHECKING:
    import torch

__all__ = ["MAX_CONFIG_DEPTH", "MAX_CONFIG_VALUES", "check_size", "load_config", "plain_config"]

#: The most values (keys, items and leaves, counted as a tree) a config may hold. A YAML
#: alias repeats a node without copying it, so a 400-byte file can stand for billions of
#: values ("billion laughs") and hang whatever walks it; a real config holds hundreds.
MAX_CONFIG_VALUES = 100_000
#: The deepest a config may nest (mappings and lists inside each other); a real config
#: nests a handful of levels, and a deeper one would exhaust Python's recursion.
MAX_CONFIG_DEPTH = 100


def _too_deep(where: str) -> ValueError:
    return ValueError(
        f"{where} nests mappings or lists more than {MAX_CONFIG_DEPTH} levels deep; a "
        "config that deep is refused (a real one nests a handful)"
    )


def check_size(config: Any, where: str = "config") -> None:
    """Refuse a config holding more than `MAX_CONFIG_VALUES` values as a tree, or
    nesting deeper than `MAX_CONFIG_DEPTH`; stops counting there, so it takes time
    bounded by that number however the config nests.

    Raises:
        ValueError: more values than that (the usual cause, YAML aliases, is named), or
            nested deeper.
    """
    budget, stack = MAX_CONFIG_VALUES, [(config, 0)]
    while stack:
        value, depth = stack.pop()
        budget -= 1
        if depth > MAX_CONFIG_DEPTH:
            raise _too_deep(where)
        if budget < 0:
            raise ValueError(
                f"{where} holds more than {MAX_CONFIG_VALUES:,} values once its YAML aliases "
                "(*name) are expanded; a config that large is refused (nested aliases can "
                "make a few hundred bytes stand for billions)"
            )
        if isinstance(value, Mapping):
            stack.extend((k, depth + 1) for k in value.keys())
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
            stack.extend((v, depth + 1) for v in value)


def plain_config(config: Any) -> Any:
    """``config`` as plain data: dicts with str keys, lists, str, numbers, bools, None.

    An OmegaConf object is resolved first (``${...}`` interpolations); any other
    mapping or non-string sequence is copied.

    Raises:
        TypeError: a key that is not a str, or a value that is not plain data.
        ValueError: more than `MAX_CONFIG_VALUES` values (`check_size()`).
    """
    if type(config).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        config = OmegaConf.to_container(config, resolve=True)
    check_size(config)
    return _plain(config)


def _plain(config: Any) -> Any:
    if isinstance(config, Mapping):
        out = {}
        for key, value in config.items():
            if not isinstance(key, str):
                raise TypeError(f"config keys must be str, got {type(key).__name__}: {key!r}")
            out[key] = _plain(value)
        return out
    if isinstance(config, Sequence) and not isinstance(config, (str, bytes)):
        return [_plain(v) for v in config]
    if config is None or isinstance(config, (str, bool, int, float)):
        return config
    raise TypeError(
        f"config values must be plain data (mappings, lists, str, numbers), got "
        f"{type(config).__name__}: {config!r:.60}"
    )


def load_config(source: str | Path) -> dict[str, Any]:
    """Read a config from a ``.json``, ``.yaml`` / ``.yml`` or ``.toml`` file, or from a
    JSON string (``'{"optimizer": "adamw"}'``).

    Raises:
        FileNotFoundError: ``source`` names no file (and is no JSON object).
        ValueError: the text does not parse (the parser's message, with the position).
        MissingDependencyError: a YAML file without PyYAML, a TOML file on Python 3.10
            without tomli.
    """
    text = str(source)
    if isinstance(source, str) and text.lstrip().startswith("{"):
        return _json(text, "the inline config")
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"config {text!r}: no such file (nor a JSON object)")
    suffix = path.suffix.lower()
    content = path.read_text()
    if suffix == ".json":
        return _json(content, str(path))
    if suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as e:
            raise MissingDependencyError(
                f"config {text!r}: reading YAML needs PyYAML; install it with: pip install pyyaml"
            ) from e
        try:
            data = yaml.safe_load(content)
        except yaml.YAMLError as e:
            raise ValueError(f"config {text!r}: {e}") from e
        except RecursionError as e:
            raise _too_deep(f"config {text!r}") from e
    elif suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10
            try:
                import tomli as tomllib
            except ImportError as e:
                raise MissingDependencyError(
                    f"config {text!r}: reading TOML on Python 3.10 needs tomli; install it "
                    "with: pip install tomli"
                ) from e
        try:
            data = tomllib.loads(content)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"config {text!r}: {e}") from e
        except RecursionError as e:
            raise _too_deep(f"config {text!r}") from e
    else:
        raise ValueError(f"config {text!r}: use a .json, .yaml, .yml or .toml file")
    if not isinstance(data, dict):
        raise ValueError(f"config {text!r} must hold a mapping, got {type(data).__name__}")
    check_size(data, f"config {text!r}")
    return data


def _json(text: str, where: str) -> dict[str, Any]:
    import json

    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        line = text.splitlines()[e.lineno - 1] if text.splitlines() else ""
        caret = " " * (e.colno - 1) + "^"
        raise ValueError(
            f"{where}: {e.msg} at line {e.lineno} column {e.colno}:\n  {line}\n  {caret}"
        ) from e
    except RecursionError as e:
        raise _too_deep(where) from e
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a JSON object, got {type(data).__name__}")
    return data
