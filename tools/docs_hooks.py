"""mkdocs hooks: the site's header shows the version pyproject.toml gives."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the docs env runs on 3.11
    import tomli as tomllib


def on_config(config: Any) -> Any:
    """Name the site ``optreg <version>``."""
    project = Path(__file__).resolve().parents[1] / "pyproject.toml"
    version = tomllib.loads(project.read_text(encoding="utf-8"))["project"]["version"]
    config["site_name"] = f"optreg {version}"
    return config
