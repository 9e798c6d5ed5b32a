"""``python -m labutils``: see :mod:`labutils.cli`."""

import sys

from .cli import main

sys.exit(main())
