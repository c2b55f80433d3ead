"""The Colab GPU stacks (``requirements-colab.txt``, and ``requirements-colab-t4.txt`` for GPUs
below compute capability 8.0) and the checks that keep them honest.

No CI machine is a Colab runtime, so the pins are checked from here, three ways:

* offline: :data:`COLAB_PREINSTALLED` and :data:`UNSLOTH_RANGES` record what Colab ships and what
  unsloth allows, so the file can be compared with them and with ``requirements.txt``;
* :func:`dry_run`: pip resolves a Colab set (:data:`COLAB_SETS`) for Colab's Python and platform, with
  Colab's preinstalled torch (and friends) as constraints: a success proves that a consistent set
  exists that keeps Colab's torch. Metadata is read with HTTP range requests (pip's ``fast-deps``),
  so the multi-GB torch/vLLM wheels are never downloaded; about 40 s;
* :class:`WheelSource` / :class:`SourceTree`: read source files of the pinned wheels *without
  importing them* (they need a GPU), for the AST checks in ``tests/test_api_drift.py``. Small
  wheels come from ``pip download --no-deps``; from big ones (vLLM, transformers) only the needed
  files are read, with HTTP range requests. Everything is cached under ``cache_dir()/colab-stack``.

CLI: ``python scripts/check_colab_pins.py [--set ampere|t4|all]``.
"""

from __future__ import annotations

import ast
import functools
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from .paths import REPO_ROOT, cache_dir

COLAB_REQUIREMENTS = REPO_ROOT / "requirements-colab.txt"
COLAB_T4_REQUIREMENTS = REPO_ROOT / "requirements-colab-t4.txt"
# The two Colab sets, picked by the setup cell from the GPU's compute capability
# (scripts/nbtools.py SETUP_CELL): vLLM's attention backends verified on GPUs need 8.0 (Ampere);
# below that (the free T4, 7.5) the set without vLLM (requirements-colab-t4.txt says why).
COLAB_SETS: dict[str, Path] = {"ampere": COLAB_REQUIREMENTS, "t4": COLAB_T4_REQUIREMENTS}
VLLM_MIN_CAPABILITY = (8, 0)
T4_OMITS = ("vllm",)  # what the T4 set leaves out of the Ampere set; everything else is the same
CPU_REQUIREMENTS = REPO_ROOT / "requirements.txt"
EMBEDDED_REQUIREMENTS = REPO_ROOT / "requirements-embedded.txt"

# ------------------------------------------------------------------------ recorded facts
CHECKED_ON = "2026-11-26"
COLAB_PYTHON = "3.12"
COLAB_GLIBC = (2, 35)  # Ubuntu 22.04 image
# Colab GPU runtime, from https://github.com/googlecolab/backend-info/blob/main/pip-freeze.gpu.txt
# (the mid-2026 snapshot; unslothai/notebooks PR #327 saw the same torch on a Colab L4 in 2026-08).
# PyTorch publishes no CUDA 12.8 build after 2.11 (googlecolab/colabtools#5982), so Colab's CUDA 12
# image stays on this torch until it moves to CUDA 13. Update here when it does.
COLAB_TORCH_LOCAL = "cu128"
COLAB_PREINSTALLED: dict[str, str] = {
    "torch": "2.11.0",
    "torchvision": "0.26.0",
    "torchaudio": "2.11.0",
    "triton": "3.6.0",
    "numpy": "2.0.2",
    "pillow": "11.3.0",
    "transformers": "5.9.0",
    "peft": "0.19.1",
    "accelerate": "1.13.0",
    "datasets": "4.0.0",
    "huggingface-hub": "1.17.0",
    "matplotlib": "3.10.0",
    "pandas": "2.2.2",
    "ipywidgets": "7.7.1",
    "tqdm": "4.67.3",
    "torchao": "0.10.0",
}
# What the dry run holds fixed: the CUDA-built packages the Colab set must not replace, plus
# numpy/pillow (Unsloth's recipe pins those two to Colab's own versions for the same reason).
DRY_RUN_KEEP = ("torch", "torchvision", "torchaudio", "triton", "numpy", "pillow")
# torch that each vLLM release pins exactly (Requires-Dist of every PyPI wheel from 0.10.2 to 0.33.0,
# read 2026-11-26). From 0.20.0 on the PyPI wheel is the CUDA 13 build; the CUDA 12 one is the
# GitHub release's +cu129 asset.
VLLM_TORCH: dict[tuple[str, str], str] = {
    ("0.10.2", "0.11.0"): "2.8.0",
    ("0.11.1", "0.13.0"): "2.9.0",
    ("0.14.0", "0.16.0"): "2.9.1",
    ("0.17.0", "0.19.1"): "2.10.0",
    ("0.20.0", "0.26.0"): "2.11.0",
    ("0.27.0", "0.32.0"): "2.13.0",
    ("0.33.0", "0.33.0"): "2.14.0",
}
VLLM_CUDA13_DEFAULT_SINCE = "0.20.0"


def vllm_torch(version: str) -> str | None:
    """The torch a vLLM release pins (from :data:`VLLM_TORCH`), None if not recorded."""
    v = Version(Version(version).public)
    for (low, high), torch in VLLM_TORCH.items():
        if Version(low) <= v <= Version(high):
            return torch
    return None


# Packages whose API the course calls on the GPU path: the Colab file pins them exactly, and
# tests/test_api_drift.py reads their sources at exactly those versions.
API_PINNED = ("unsloth", "unsloth-zoo", "vllm", "transformers", "trl")

# unsloth 2026.10.9 METADATA (Requires-Dist of unsloth and unsloth_zoo); the network test
# tests/test_colab_pins.py compares this record with the wheels' metadata.
UNSLOTH_VERSION = "2026.10.9"
UNSLOTH_RANGES: dict[str, str] = {
    "torch": ">=2.4.0,<2.15.0",
    "transformers": "!=4.53.0,!=4.54.0,!=4.55.0,!=4.55.1,!=4.57.0,!=4.57.4,!=4.57.5,!=5.0.0,!=5.1.0,<=5.17.0,>=4.52.4",
    "trl": "!=0.19.0,<=1.15.0,>=0.18.2",
    "datasets": "!=4.0.*,!=4.1.0,!=4.4.*,!=4.5.0,<5.0.0,>=3.4.1",
    "peft": "!=0.11.0,>=0.18.0",
    "accelerate": ">=0.34.1",
    "bitsandbytes": "!=0.46.0,!=0.48.0,>=0.45.5",
    "xformers": ">=0.0.27.post2",
    "triton": ">=3.0.0",
    "huggingface-hub": ">=0.34.0",
    "torchao": ">=0.13.0",  # from unsloth_zoo
}

# requirements.txt entries the Colab file does not repeat, and why.
CPU_TOOLING = {"jupyter-client", "ipykernel", "nbformat", "nbclient", "nbmake", "pytest", "hypothesis", "ruff"}
DOCUMENTED_DIFFERENCES: dict[str, str] = {
    "peft": "unsloth needs peft>=0.18 (requirements.txt allows >=0.17); Colab's 0.19.1 fits both",
    "ipywidgets": "Colab's frontend ships ipywidgets 7.7.1 and should keep it; the inspector uses only "
    "Dropdown/Textarea/Output/HTML/HBox/VBox/Layout, all in 7.x (requirements.txt asks >=8.1)",
}


# ------------------------------------------------------------------ requirement files
def read_requirements(path: Path = COLAB_REQUIREMENTS) -> list[Requirement]:
    """Requirements of a file (comments and blank lines skipped; option lines are an error)."""
    out = []
    for n, raw in enumerate(Path(path).read_text().splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line:
            continue
        if line.startswith("-"):
            raise ValueError(f"{path.name}:{n}: option lines ({line!r}) are not supported here")
        out.append(Requirement(line))
    return out


def by_name(reqs: Iterable[Requirement]) -> dict[str, Requirement]:
    return {canonicalize_name(r.name): r for r in reqs}


def wheel_version(url: str) -> Version:
    """Version (local label included) from a wheel URL's file name."""
    name = urllib.parse.unquote(url.rsplit("/", 1)[-1])
    if not name.endswith(".whl"):
        raise ValueError(f"not a wheel URL: {url}")
    return Version(name.split("-")[1])


def pinned_version(req: Requirement) -> Version | None:
    """The exact version a requirement selects (``==X`` or a wheel URL), else None."""
    if req.url:
        return wheel_version(req.url)
    specs = list(req.specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return Version(specs[0].version)
    return None


def stand_in(req: Requirement) -> Requirement:
    """``name==public version`` for a direct-URL wheel: the same release from the package index."""
    return Requirement(f"{req.name}=={wheel_version(req.url).public}")


# ------------------------------------------------------------------------- network
def index_url() -> str:
    return os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")


def reachable(url: str, timeout: float = 5.0) -> bool:
    """Does the URL's server answer an HTTP request in time? ``COURSE_OFFLINE=1`` says no.

    An HTTP answer, not a TCP connect: sandboxes and proxies accept connections to anywhere."""
    if os.environ.get("COURSE_OFFLINE", "") not in ("", "0"):
        return False
    return _answers(url if not url.endswith("/simple") else url + "/pip/", timeout)


@functools.cache
def _answers(url: str, timeout: float) -> bool:  # asked once per process
    try:
        with _urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return True
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (OSError, ValueError):
        return False


def offline_reason(url: str | None = None) -> str | None:
    """Why network checks against ``url`` (default: the package index) cannot run, or None."""
    url = url or index_url()
    if os.environ.get("COURSE_OFFLINE", "") not in ("", "0"):
        return "COURSE_OFFLINE is set"
    if not reachable(url):
        return f"{urllib.parse.urlsplit(url).hostname} did not answer within 5 s (offline machine?)"
    return None


def pip_env() -> dict[str, str]:
    """The environment for pip: machine-local config (find-links, constraints, file indexes) off,
    so the answer is what the public index gives Colab. The index URL, certificates, proxies stay."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "PIP_FIND_LINKS",
            "PIP_CONSTRAINT",
            "PIP_EXTRA_INDEX_URL",
            "PIP_NO_INDEX",
            "PIP_REQUIRE_VIRTUALENV",
            "PIP_TARGET",
            "PIP_PREFIX",
            "PIP_USER",
        )
    }
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def colab_target_flags(python: str = COLAB_PYTHON, glibc: tuple[int, int] = COLAB_GLIBC) -> list[str]:
    """pip flags that describe Colab: CPython ``python`` on x86_64 Linux with glibc ``glibc``.

    pip matches ``--platform`` literally, so every manylinux tag the runtime accepts is listed."""
    abi = "cp" + python.replace(".", "")
    flags = ["--python-version", python, "--implementation", "cp", "--abi", abi, "--abi", "abi3", "--abi", "none"]
    for minor in range(glibc[1], 4, -1):
        flags += ["--platform", f"manylinux_{glibc[0]}_{minor}_x86_64"]
    for legacy in ("manylinux2014", "manylinux2010", "manylinux1", "linux"):
        flags += ["--platform", f"{legacy}_x86_64"]
    return flags + ["--only-binary=:all:"]


def stack_cache() -> Path:
    path = cache_dir() / "colab-stack"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _urlopen(req: urllib.request.Request, timeout: float = 60):
    return urllib.request.urlopen(req, timeout=timeout)


def project_files(project: str) -> list[dict]:
    """The index's file list of a project (PEP 691 JSON simple API)."""
    req = urllib.request.Request(
        f"{index_url()}/{canonicalize_name(project)}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with _urlopen(req, timeout=30) as resp:
        return json.load(resp)["files"]


def wheel_url(project: str, version: str) -> str:
    """URL of the x86_64-Linux (or pure-Python) wheel of ``project==version`` on the index."""
    prefix = f"{canonicalize_name(project).replace('-', '_')}-{version}-".lower()
    found = [
        f
        for f in project_files(project)
        if f["filename"].lower().startswith(prefix) and f["filename"].endswith(".whl") and not f.get("yanked")
    ]
    linux = [f for f in found if "x86_64" in f["filename"] and "manylinux" in f["filename"]]
    pure = [f for f in found if f["filename"].endswith("-none-any.whl")]
    if not (linux or pure):
        raise LookupError(f"no x86_64 Linux or pure-Python wheel of {project}=={version} on {index_url()}")
    return (linux or pure)[0]["url"]


class RangeFile(io.RawIOBase):
    """A read-only, seekable file over HTTP range requests (enough for ``zipfile``)."""

    BLOCK = 1 << 16

    def __init__(self, url: str, timeout: float = 60):
        super().__init__()
        self.url, self.timeout, self.pos, self.blocks = url, timeout, 0, {}
        with _urlopen(urllib.request.Request(url, method="HEAD"), timeout) as resp:
            self.size = int(resp.headers["Content-Length"])
        self.requests = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self.pos

    def seek(self, offset, whence=0):
        self.pos = {0: offset, 1: self.pos + offset, 2: self.size + offset}[whence]
        return self.pos

    def _fetch(self, start: int, end: int) -> bytes:
        req = urllib.request.Request(self.url, headers={"Range": f"bytes={start}-{end - 1}"})
        with _urlopen(req, self.timeout) as resp:
            if resp.status != 206:  # the server ignored the range: do not pull a whole wheel
                raise OSError(f"{self.url} does not answer range requests (HTTP {resp.status})")
            self.requests += 1
            return resp.read()

    def read(self, n=-1):
        if n is None or n < 0:
            n = self.size - self.pos
        end = min(self.size, self.pos + n)
        if end <= self.pos:
            return b""
        first, last = self.pos // self.BLOCK, (end - 1) // self.BLOCK
        missing = [b for b in range(first, last + 1) if b not in self.blocks]
        if missing:  # one request for the whole missing span
            lo, hi = missing[0] * self.BLOCK, min(self.size, (missing[-1] + 1) * self.BLOCK)
            data = self._fetch(lo, hi)
            for b in range(missing[0], missing[-1] + 1):
                self.blocks[b] = data[(b - missing[0]) * self.BLOCK : (b - missing[0] + 1) * self.BLOCK]
        buf = b"".join(self.blocks[b] for b in range(first, last + 1))
        out = buf[self.pos - first * self.BLOCK : end - first * self.BLOCK]
        self.pos = end
        return out

    def readinto(self, b):
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def pip_download(specs: Iterable[str], dest: Path | None = None, timeout: float = 300) -> dict[str, Path]:
    """``pip download --no-deps`` of exact ``name==version`` specs for Colab; cached in ``dest``.

    Returns {spec: wheel path}. Wheels already in ``dest`` are not fetched again."""
    dest = Path(dest or stack_cache() / "wheels")
    dest.mkdir(parents=True, exist_ok=True)

    def present(spec: str) -> Path | None:
        name, version = spec.split("==")
        hits = sorted(dest.glob(f"{canonicalize_name(name).replace('-', '_')}-{version}-*.whl"))
        return hits[0] if hits else None

    missing = [s for s in specs if present(s) is None]
    if missing:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "-q",
            "-d",
            str(dest),
            *colab_target_flags(),
            *missing,
        ]
        done = subprocess.run(cmd, env=pip_env(), capture_output=True, text=True, timeout=timeout)
        if done.returncode:
            raise RuntimeError(f"pip download failed ({done.returncode}): {done.stderr[-2000:]}")
    out = {s: present(s) for s in specs}
    if any(p is None for p in out.values()):
        raise RuntimeError(f"pip download did not produce {[s for s, p in out.items() if p is None]}")
    return out


class WheelSource:
    """Text files of one wheel, local or remote, without installing or importing it.

    Remote members are fetched with range requests and cached under ``cache_dir()/colab-stack``."""

    def __init__(self, project: str, version: str, path: Path | None = None, url: str | None = None):
        self.project, self.version, self.path, self.url = project, version, path, url
        self._zip: zipfile.ZipFile | None = None
        self.members_dir = stack_cache() / "members" / f"{canonicalize_name(project)}-{version}"

    @classmethod
    def local(cls, path: Path) -> WheelSource:
        name, version = Path(path).name.split("-")[:2]
        return cls(name, version, path=Path(path))

    def _open(self) -> zipfile.ZipFile:
        if self._zip is None:
            if self.path is not None:
                self._zip = zipfile.ZipFile(self.path)
            else:
                self._zip = zipfile.ZipFile(RangeFile(self.url or wheel_url(self.project, self.version)))
        return self._zip

    def read(self, member: str) -> str | None:
        """A member's text, or None when the wheel has no such file."""
        cached = self.members_dir / member
        missing = self.members_dir / (member + ".missing")
        if self.path is None and cached.exists():
            return cached.read_text(encoding="utf-8")
        if self.path is None and missing.exists():
            return None
        try:
            text = self._open().read(member).decode("utf-8")
        except KeyError:
            text = None
        if self.path is None:
            target = cached if text is not None else missing
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text or "", encoding="utf-8")
        return text

    def metadata(self) -> str:
        dist = f"{canonicalize_name(self.project).replace('-', '_')}-{self.version}.dist-info/METADATA"
        text = self.read(dist)
        if text is None:  # dist-info folders are not always normalised the same way
            names = [n for n in self._open().namelist() if n.endswith(".dist-info/METADATA")]
            text = self.read(names[0])
        return text

    def requires(self) -> list[Requirement]:
        return [
            Requirement(line.split(":", 1)[1].strip())
            for line in self.metadata().splitlines()
            if line.startswith("Requires-Dist:")
        ]


class InstalledSource:
    """Source files of an installed package, read from disk (no import)."""

    def __init__(self, package: str):
        import importlib.util

        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ImportError(f"{package} is not installed")
        self.root = Path(list(spec.submodule_search_locations)[0]).parent

    def read(self, member: str) -> str | None:
        path = self.root / member
        return path.read_text(encoding="utf-8") if path.exists() else None


# ------------------------------------------------------------------------------ dry run
@dataclass
class DryRun:
    ok: bool
    seconds: float
    command: list[str]
    requirements: Path = COLAB_REQUIREMENTS
    installs: dict[str, str] = field(default_factory=dict)  # canonical name -> version
    kept: dict[str, str] = field(default_factory=dict)  # Colab packages held at their version
    notes: list[str] = field(default_factory=list)
    error: str = ""


def dry_run(
    requirements: Path = COLAB_REQUIREMENTS,
    keep: Iterable[str] = DRY_RUN_KEEP,
    url_mode: str = "auto",
    timeout: float = 900,
) -> DryRun:
    """Resolve ``requirements`` as Colab would, holding ``keep`` at Colab's versions.

    ``url_mode``: direct-URL wheels (the vLLM CUDA 12 build) are resolved ``as-written`` when their
    host answers, else (``auto``) or always (``stand-in``) as the same release from the index, whose
    dependency metadata is the same apart from the CUDA-variant helper packages; a note says so."""
    reqs = read_requirements(requirements)
    notes, lines = [], []
    for req in reqs:
        if req.url and (url_mode == "stand-in" or (url_mode == "auto" and not reachable(req.url))):
            why = (
                "as asked"
                if url_mode == "stand-in"
                else f"{urllib.parse.urlsplit(req.url).hostname} does not answer here"
            )
            lines.append(str(stand_in(req)))
            notes.append(
                f"{req.name}: resolved as {stand_in(req)} from the index, standing in for "
                f"{req.url.rsplit('/', 1)[-1]} ({why})"
            )
        else:
            lines.append(str(req))
    held = {canonicalize_name(k): COLAB_PREINSTALLED[k] for k in keep}
    with tempfile.TemporaryDirectory() as tmp:
        req_file, con_file, report = Path(tmp, "req.txt"), Path(tmp, "con.txt"), Path(tmp, "report.json")
        req_file.write_text("\n".join(lines) + "\n")
        con_file.write_text("".join(f"{k}=={v}\n" for k, v in held.items()))
        base = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--progress-bar=off",
            "--report",
            str(report),
            *colab_target_flags(),
            "-r",
            str(req_file),
            "-c",
            str(con_file),
        ]
        cmd = base[:6] + ["--use-feature=fast-deps"] + base[6:]
        t0 = time.perf_counter()
        try:
            done = subprocess.run(cmd, env=pip_env(), capture_output=True, text=True, timeout=timeout)
            if done.returncode and "fast-deps" in done.stderr and "invalid choice" in done.stderr:
                cmd = base  # a pip without fast-deps: slower (downloads wheels), same answer
                done = subprocess.run(cmd, env=pip_env(), capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return DryRun(
                False,
                time.perf_counter() - t0,
                cmd,
                Path(requirements),
                notes=notes,
                error=f"pip did not finish within {timeout:.0f} s (slow index?)",
            )
        seconds = time.perf_counter() - t0
        if done.returncode:
            return DryRun(
                False, seconds, cmd, Path(requirements), notes=notes, error=_pip_error(done.stdout + "\n" + done.stderr)
            )
        items = json.loads(report.read_text())["install"]
    installs = {canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"] for i in items}
    kept = {k: installs[k] for k in held if k in installs}  # a set without vLLM needs no torchaudio
    ok = "torch" in kept and all(Version(kept[k]) == Version(held[k]) for k in kept)
    return DryRun(
        ok,
        seconds,
        cmd,
        Path(requirements),
        installs,
        kept,
        notes,
        "" if ok else f"Colab packages would change: { {k: (held[k], kept[k]) for k in held} }",
    )


def _pip_error(output: str) -> str:
    """The part of pip's output that explains a failed resolution."""
    lines = [ln for ln in output.splitlines() if "fast-deps" not in ln and ln.strip()]
    start = next(
        (
            i
            for i, ln in enumerate(lines)
            if ln.startswith(("ERROR", "The conflict is caused by")) or "conflict" in ln.lower()
        ),
        max(0, len(lines) - 30),
    )
    return "\n".join(lines[start:])[-4000:]


def cpu_conflicts(installs: dict[str, str], cpu: Path = CPU_REQUIREMENTS) -> list[str]:
    """Packages of a Colab resolution whose version requirements.txt would not accept
    (torch is compared at Colab's preinstalled version; documented differences are skipped)."""
    out = []
    for name, req in by_name(read_requirements(cpu)).items():
        version = COLAB_PREINSTALLED["torch"] if name == "torch" else installs.get(name)
        if version is None or name in DOCUMENTED_DIFFERENCES:
            continue
        if not req.specifier.contains(Version(version), prereleases=True):
            out.append(f"{name} {version} (requirements.txt: {req.specifier})")
    return out


# ------------------------------------------------------------------------- AST helpers
def dotted(node: ast.AST) -> str:
    """``a.b.c`` for Name/Attribute chains, '' otherwise."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def function_def(tree: ast.Module, name: str) -> ast.FunctionDef:
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return node
    raise LookupError(f"no top-level function {name!r}")


def call_keywords(func: ast.AST, callee: str) -> list[set[str]]:
    """Keyword names of each call to ``callee`` (a dotted name) inside ``func``."""
    return [
        {k.arg for k in node.keywords if k.arg}
        for node in ast.walk(func)
        if isinstance(node, ast.Call) and dotted(node.func) == callee
    ]


def assigned_dict_keywords(func: ast.AST, var: str) -> set[str]:
    """Keys of ``var = dict(k=..., ...)`` inside ``func``."""
    for node in ast.walk(func):
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == var for t in node.targets)
            and isinstance(node.value, ast.Call)
            and dotted(node.value.func) == "dict"
        ):
            return {k.arg for k in node.value.keywords if k.arg}
    raise LookupError(f"no `{var} = dict(...)` found")


def compared_literals(func: ast.AST, name: str) -> set[str]:
    """String constants that ``name`` is compared with (==, !=, in, not in) inside ``func``."""
    out: set[str] = set()
    for node in ast.walk(func):
        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and node.left.id == name:
            for comp in node.comparators:
                elts = comp.elts if isinstance(comp, (ast.Tuple, ast.List, ast.Set)) else [comp]
                out |= {e.value for e in elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return out


@dataclass
class Params:
    names: set[str]
    var_kw: bool
    where: str  # module.qualname the parameters were read from

    def accepts(self, name: str) -> bool:
        return name in self.names


class SourceTree:
    """Modules of several packages as ASTs, read from :class:`WheelSource`/:class:`InstalledSource`.

    ``aliases`` maps names re-exported by a package's lazy ``__init__`` to their module, e.g.
    ``{"transformers.TrainingArguments": "transformers.training_args"}``."""

    def __init__(self, sources: dict[str, object], aliases: dict[str, str] | None = None):
        self.sources, self.aliases, self._cache = sources, aliases or {}, {}

    def module(self, name: str) -> ast.Module | None:
        if name not in self._cache:
            top = name.split(".")[0]
            src = self.sources.get(top)
            text = None
            if src is not None:
                rel = name.replace(".", "/")
                text = src.read(rel + ".py")
                if text is None:
                    text = src.read(rel + "/__init__.py")
            self._cache[name] = ast.parse(text) if text is not None else None
        return self._cache[name]

    def _is_package(self, name: str) -> bool:
        src = self.sources.get(name.split(".")[0])
        return src is not None and src.read(name.replace(".", "/") + "/__init__.py") is not None

    def resolve(self, module: str, name: str) -> tuple[str, str]:
        """Where ``name`` used in ``module`` is defined: (module, name). Follows ``from x import``."""
        tree = self.module(module)
        if tree is None:
            raise LookupError(f"module {module} not found")
        for node in _top_level(tree):
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name == name:
                return module, name
        for node in _top_level(tree):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if (alias.asname or alias.name) != name:
                        continue
                    if node.level:
                        pkg = module if self._is_package(module) else module.rsplit(".", 1)[0]
                        for _ in range(node.level - 1):
                            pkg = pkg.rsplit(".", 1)[0]
                        target = f"{pkg}.{node.module}" if node.module else pkg
                    else:
                        target = node.module
                    full = f"{target}.{alias.name}"
                    if full in self.aliases:
                        return self.resolve(self.aliases[full], alias.name)
                    if self.module(target) is None:
                        raise LookupError(f"{full} (imported in {module}) is not in the source tree")
                    return self.resolve(target, alias.name)
        raise LookupError(f"{name} is neither defined nor imported in {module}")

    def class_def(self, module: str, name: str) -> tuple[str, ast.ClassDef]:
        module, name = self.resolve(module, name)
        for node in _top_level(self.module(module)):
            if isinstance(node, ast.ClassDef) and node.name == name:
                return module, node
        raise LookupError(f"{module}.{name} is not a class")

    def class_fields(self, module: str, name: str) -> set[str]:
        """Annotated class attributes of a class and its bases (dataclass / msgspec fields)."""
        module, cls = self.class_def(module, name)
        out = {
            n.target.id
            for n in cls.body
            if isinstance(n, ast.AnnAssign)
            and isinstance(n.target, ast.Name)
            and "ClassVar" not in ast.unparse(n.annotation)
        }
        for base in cls.bases:
            base_name = dotted(base)
            if not base_name or "." in base_name:
                continue
            try:
                out |= self.class_fields(module, base_name)
            except LookupError:
                pass  # a base from outside the tree (e.g. msgspec.Struct) adds no fields we check
        return out

    def method_params(self, module: str, cls_name: str, method: str) -> Params:
        """Parameters of ``cls.method`` (inherited methods and ``functools.wraps`` pass-throughs
        followed), without ``self``/``cls``."""
        module, cls = self.class_def(module, cls_name)
        for node in cls.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == method:
                params = _params(node, f"{module}.{cls.name}.{method}")
                wrapped = _wrapped_target(node)
                if wrapped and _is_passthrough(node):
                    owner, attr = wrapped.rsplit(".", 1)
                    return self.method_params(module, owner, attr)
                return params
        for base in cls.bases:
            if dotted(base) and "." not in dotted(base):
                try:
                    return self.method_params(module, dotted(base), method)
                except LookupError:
                    continue
        raise LookupError(f"{module}.{cls.name} has no method {method}")

    def function(self, module: str, qualname: str) -> ast.FunctionDef:
        parts = qualname.split(".")
        if len(parts) == 1:
            return function_def(self.module(self.resolve(module, parts[0])[0]), parts[0])
        module, cls = self.class_def(module, parts[0])
        for node in cls.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == parts[1]:
                return node
        raise LookupError(f"{module}.{qualname} not found")


def _top_level(tree: ast.Module):
    """Module-level statements, including those inside top-level if/try blocks."""
    stack = list(tree.body)
    while stack:
        node = stack.pop(0)
        if isinstance(node, ast.If):
            stack = node.body + node.orelse + stack
        elif isinstance(node, ast.Try):
            stack = node.body + [s for h in node.handlers for s in h.body] + node.orelse + stack
        else:
            yield node


def _params(fn: ast.FunctionDef, where: str) -> Params:
    a = fn.args
    names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
    if names and names[0] in ("self", "cls"):
        names = names[1:]
    return Params(set(names), a.kwarg is not None, where)


def _wrapped_target(fn: ast.FunctionDef) -> str | None:
    for dec in fn.decorator_list:
        if isinstance(dec, ast.Call) and dotted(dec.func) in ("functools.wraps", "wraps") and dec.args:
            return dotted(dec.args[0]) or None
    return None


def _is_passthrough(fn: ast.FunctionDef) -> bool:
    """``def f(x, *args, **kwargs)``: everything but the first argument is forwarded."""
    a = fn.args
    return a.vararg is not None and a.kwarg is not None and len(a.args) <= 1 and not a.kwonlyargs


# --------------------------------------------------------------------------- reporting
def describe(result: DryRun) -> str:
    lines = [
        f"pip dry run for Colab (CPython {COLAB_PYTHON}, x86_64, glibc {COLAB_GLIBC[0]}.{COLAB_GLIBC[1]}) "
        f"of {result.requirements.name}: {'OK' if result.ok else 'FAILED'} in {result.seconds:.0f} s"
    ]
    lines += [f"  note: {n}" for n in result.notes]
    if result.ok:
        lines.append(
            "  Colab's preinstalled packages held (not replaced): "
            + ", ".join(f"{k} {v}" for k, v in result.kept.items())
        )
        wanted = by_name(read_requirements(result.requirements))
        lines.append(
            "  the course's pins resolve to: " + ", ".join(f"{n} {result.installs.get(n, '?')}" for n in wanted)
        )
        lines.append(
            f"  {len(result.installs)} distributions in the resolution (with --ignore-installed, so "
            "Colab's own copies are listed too; on Colab pip keeps those that fit)"
        )
    else:
        lines.append("  " + result.error.replace("\n", "\n  "))
    return "\n".join(lines)


def main_check(
    url_mode: str = "auto", as_json: bool = False, echo: Callable[[str], None] = print, set_name: str = "all"
) -> int:
    """The CLI's body: dry run + requirements.txt comparison of one Colab set (``ampere``, ``t4``) or
    ``all``; exit code 0 (ok), 1 (a conflict in any set), 2 (offline)."""
    names = list(COLAB_SETS) if set_name == "all" else [set_name]
    unknown = [n for n in names if n not in COLAB_SETS]
    if unknown:
        raise ValueError(f"unknown Colab set {unknown[0]!r}; choose from {sorted(COLAB_SETS)} or 'all'")
    if not reachable(index_url()):
        echo(f"package index {index_url()} not reachable: cannot resolve the Colab sets here (skipped)")
        return 2
    report, all_ok = {}, True
    for name in names:
        result = dry_run(COLAB_SETS[name], url_mode=url_mode)
        conflicts = cpu_conflicts(result.installs) if result.ok else []
        ok = result.ok and not conflicts
        all_ok &= ok
        report[name] = {
            "requirements": COLAB_SETS[name].name,
            "ok": ok,
            "seconds": round(result.seconds, 1),
            "kept": result.kept,
            "installs": result.installs,
            "notes": result.notes,
            "cpu_conflicts": conflicts,
            "error": result.error,
        }
        if not as_json:
            echo(f"[{name}] " + describe(result))
            if result.ok:
                echo(
                    "  versions also accepted by requirements.txt: "
                    + ("yes" if not conflicts else "NO: " + "; ".join(conflicts))
                )
    if as_json:
        echo(json.dumps({"ok": all_ok, "sets": report}, indent=1))
    return 0 if all_ok else 1
