"""``python -m archgen``: the same command line as ``archgen``."""

import sys

from archgen.cli import main

sys.exit(main())
