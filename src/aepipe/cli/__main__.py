"""``python -m aepipe.cli``: the same as the ``aepipe`` command."""

import sys

from . import main

sys.exit(main())
