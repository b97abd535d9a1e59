"""``python -m perfmodel``: the CLI without the console script (e.g. from a source tree on a
lent GPU machine, PYTHONPATH = the repository root)."""

from perfmodel.cli.main import entry

entry()
