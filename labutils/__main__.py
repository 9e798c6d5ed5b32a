"""``python -m labutils``: see :mod:`labutils.cli.command`."""

import sys

from .cli.command import main

sys.exit(main())
