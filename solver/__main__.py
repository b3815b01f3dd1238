"""``python -m solver``: train a net from the command line (see solver.cli)."""

import sys

from solver.cli import main

sys.exit(main())
