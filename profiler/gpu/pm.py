"""``perfmodel`` from the source tree (PYTHONPATH=repo root), no install needed."""

import sys

from perfmodel.cli import main

sys.exit(main(sys.argv[1:]))
