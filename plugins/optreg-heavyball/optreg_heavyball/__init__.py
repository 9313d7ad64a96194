"""optreg-heavyball: heavyball's optimizers by name (nothing imported to list them)."""

from __future__ import annotations

__all__: list[str] = []
