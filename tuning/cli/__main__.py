"""``python -m tuning.cli``: the same as the ``tuning`` command."""

import sys

from tuning.cli import main

sys.exit(main())
