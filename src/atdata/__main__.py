"""``python -m atdata``: the command line."""

import sys

from atdata.cli import main

sys.exit(main())
