"""`python -m buildkit.checks`: the checks of `nox -s ci` (buildkit/checks/run.py)."""

from __future__ import annotations

import sys

from buildkit.checks.run import main

sys.exit(main())
