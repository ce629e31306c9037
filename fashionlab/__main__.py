"""``python -m fashionlab ...``: the ``fashionlab`` command line (:mod:`fashionlab.cli`)."""
import sys

from .cli import main

sys.exit(main())
