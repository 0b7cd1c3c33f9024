"""``python -m gpwave`` runs the command line."""

import sys

from gpwave.cli import main

sys.exit(main())
