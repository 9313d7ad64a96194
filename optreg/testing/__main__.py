"""``python -m optreg.testing``: the kit's command (`optreg.testing.main`)."""

import sys

from optreg.testing import main

if __name__ == "__main__":
    sys.exit(main())
