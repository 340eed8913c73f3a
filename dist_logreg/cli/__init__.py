"""The command line: the parser, one module per sub-command, and dispatch (thin)."""

from dist_logreg.cli.main import main

__all__ = ["main"]
