"""``python -m optreg``: the same as the ``optreg`` command."""

from __future__ import annotations

import sys

from optreg.cli._main import main

if __name__ == "__main__":
    sys.exit(main())
