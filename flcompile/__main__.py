"""`python -m flcompile`: the same as the `flcompile` command."""

from __future__ import annotations

import sys

from flcompile.cli import main

sys.exit(main())
