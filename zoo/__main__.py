"""``python -m zoo``: the ``zoo`` command."""
import sys

from .cli import main

sys.exit(main())
