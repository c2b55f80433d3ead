"""``python -m utils.evaluate --data data/test.jsonl --completions FILE_OR_FOLDER [--json]``."""

import sys

from .evaluation import main

sys.exit(main())
