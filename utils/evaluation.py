"""The evaluation command's old name, kept so earlier recorded commands still run.

Use ``python -m utils.evaluate`` (the code lives in :mod:`utils.evaluate.evaluation`).
"""

import sys

if __name__ == "__main__":
    from utils.evaluate.evaluation import main

    sys.exit(main())
