"""`python -m segtriage.tui.cli`: the `segtriage` command (the painter runs so from the app)."""

import sys

from . import main

sys.exit(main())
