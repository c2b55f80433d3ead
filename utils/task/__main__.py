"""``python -m utils.task [--check]``: regenerate the committed problems from their seeds (or compare)."""

import sys

from .datagen import main

sys.exit(main())
