"""`python -m seedvr_desktop` runs the same entry point as the `seedvr-desktop` command."""

from __future__ import annotations

import sys

from seedvr_desktop.cli import main

if __name__ == "__main__":
    sys.exit(main())
