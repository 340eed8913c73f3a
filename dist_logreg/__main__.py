"""``python -m dist_logreg``: the same entry point as the ``dist-logreg`` command."""

from dist_logreg.cli import entry

entry()
