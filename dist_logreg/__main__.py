"""``python -m dist_logreg``: the same entry point as the ``dist-logreg`` command."""

import sys

from dist_logreg.cli import main

sys.exit(main())
