"""``python -m scalingfit`` is the ``scalingfit`` command."""

import sys

from .cli import main

sys.exit(main())
