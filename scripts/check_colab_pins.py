"""Do the Colab sets still resolve on Colab without replacing Colab's torch?

    python scripts/check_colab_pins.py              # both sets, human-readable
    python scripts/check_colab_pins.py --set t4     # one set: ampere (requirements-colab.txt, with vLLM)
                                                    # or t4 (requirements-colab-t4.txt, GPUs below 8.0)
    python scripts/check_colab_pins.py --json       # machine-readable
    python scripts/check_colab_pins.py --stand-in   # resolve direct-URL wheels as the index release

Runs `pip install --dry-run --ignore-installed --report` for CPython 3.12 on x86_64 Linux
(Colab's runtime) with Colab's preinstalled torch, torchvision, torchaudio, triton, numpy and
pillow as constraints, then checks that the resolution keeps them and that the versions it picks
are ones requirements.txt accepts too. Dependency metadata is read with HTTP range requests
(pip's fast-deps), so nothing large is downloaded: about 40 s. Needs the package index; exits 2
(and says so) when it cannot be reached. The facts it uses live in utils/colab_stack.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from utils.colab_stack import COLAB_SETS, main_check  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument(
        "--stand-in",
        action="store_true",
        help="resolve direct-URL wheels as the same release from the index, even when their host answers",
    )
    ap.add_argument(
        "--set",
        choices=[*COLAB_SETS, "all"],
        default="all",
        help="which Colab set to check: ampere (compute capability >= 8.0, with vLLM), t4 (below 8.0), all",
    )
    args = ap.parse_args()
    return main_check(url_mode="stand-in" if args.stand_in else "auto", as_json=args.json, set_name=args.set)


if __name__ == "__main__":
    sys.exit(main())
