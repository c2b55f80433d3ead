"""API drift: every call the course makes into TRL / PEFT / Unsloth / vLLM on the GPU path,
checked against both pin sets.

(a) The installed CPU set (requirements.txt), always: GRPOConfig / SFTConfig / LoraConfig fields
    via ``dataclasses.fields``, trainer keywords via ``inspect.signature``; the configs are also
    built for real (``build_grpo_config`` for every backend x generation path, ``run_sft`` up to
    its SFTTrainer call, ``lora_config`` for every profile), and TRL's reward-function call is read
    from its grpo_trainer.py and replayed on the course's reward functions.

(b) The Colab sets, requirements-colab.txt (Ampere and newer, with vLLM) and
    requirements-colab-t4.txt (the T4 branch: the same pins without vLLM), each test run for both
    (the vLLM tests for the Ampere set only), without importing them (they need a GPU), from source
    with ``ast``: the trl, unsloth, unsloth_zoo wheels (and peft at Colab's preinstalled version)
    are fetched once with ``pip download --no-deps`` into
    ``~/.cache/grpo-scheduling-course/colab-stack/wheels`` (~33 MB, reused by later runs). vLLM's
    wheel is 300-550 MB, so only ``vllm/sampling_params.py``, ``vllm/entrypoints/llm.py`` and
    ``vllm/engine/arg_utils.py`` are read out of the PyPI wheel of the pinned release with HTTP
    range requests (the +cu129 GitHub build differs in compiled code, not in these Python files);
    transformers' ``training_args.py`` (GRPOConfig's base class) the same way; both cached under
    ``.../colab-stack/members``. The AST reader is itself checked against ``dataclasses.fields``
    on the installed packages. (b) is skipped, with the reason, when the index cannot be reached.

(c) What differs on the T4 branch is the configuration the course builds, checked here for both GPU
    kinds: fp16 instead of bf16 (a T4 has no bf16), and no vLLM anywhere when it is not installed.

The names checked come from the course code, not from lists here: ``grpo_knobs()`` is called for
every profile x backend x generation path x CPU/GPU (backends and paths read from its own
comparisons), plus ``build_grpo_config``'s extra keywords; ``run_sft``'s SFTConfig dict; and the
keywords of the calls in ``load_policy``, ``build_trainer``, ``lora_config``, ``generate_with_vllm``.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import inspect
import io
import itertools
import re
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

from utils import colab_stack as cs
from utils.llm import generation
from utils.profiles import PROFILES
from utils.train import config, trainer, warmstart


def _defs(module, *names):
    tree = ast.parse(Path(module.__file__).read_text())
    return {name: cs.function_def(tree, name) for name in names}


GENERATION_AST = ast.parse(Path(generation.__file__).read_text())
FN = {
    **_defs(config, "grpo_knobs", "build_grpo_config", "lora_config"),
    **_defs(warmstart, "run_sft"),
    **_defs(trainer, "load_policy", "build_trainer"),
}
ALIASES = {"transformers.TrainingArguments": "transformers.training_args"}
TRL_REWARD_ARGS = {"prompts", "completions", "completion_ids"}  # what the course's rewards rely on (notes.md)

OFFLINE = cs.offline_reason()
needs_index = pytest.mark.skipif(OFFLINE is not None, reason=f"Colab-set sources need the package index: {OFFLINE}")


# ----------------------------------------------------------------- names the course uses
BACKENDS = sorted(cs.compared_literals(FN["grpo_knobs"], "backend"))
GEN_PATHS = sorted(cs.compared_literals(FN["grpo_knobs"], "gen_path") | set(generation.PATHS))
COMBOS = list(itertools.product(BACKENDS, GEN_PATHS, (False, True)))


def knobs(backend: str, path: str, on_gpu: bool, profile=PROFILES["gpu"]):
    return config.grpo_knobs(profile, backend, 448, path, on_gpu)


def grpo_config_names() -> set[str]:
    names = {k.name for p in PROFILES.values() for b, g, gpu in COMBOS for k in knobs(b, g, gpu, p)}
    extra = set().union(*cs.call_keywords(FN["build_grpo_config"], "kwargs.update"))
    return names | extra


def keywords(fn: ast.AST, callee: str) -> set[str]:
    calls = cs.call_keywords(fn, callee)
    assert calls, f"no call to {callee} found: the course code changed, update this test"
    return set().union(*calls)


def sft_config_names() -> set[str]:
    return cs.assigned_dict_keywords(FN["run_sft"], "kwargs")


def test_the_enumeration_reaches_every_path():
    """Guards the tests below against silently checking a subset."""
    assert set(BACKENDS) >= {"trl", "unsloth"} and set(GEN_PATHS) >= {"vllm", "static-cache", "plain"}, (
        BACKENDS,
        GEN_PATHS,
    )
    per_path = {g: frozenset(k.name for k in knobs("trl", g, True)) for g in GEN_PATHS}
    assert len(set(per_path.values())) >= 2, "generation paths no longer change the knobs (vllm's)?"
    assert {"output_dir", "reward_weights", "save_strategy"} <= grpo_config_names()


# ------------------------------------------------------------ (a) the installed CPU set
def test_grpo_config_has_every_knob():
    from trl import GRPOConfig

    missing = grpo_config_names() - {f.name for f in dataclasses.fields(GRPOConfig)}
    assert not missing, f"installed TRL's GRPOConfig lacks {sorted(missing)} (build_grpo_config would refuse them)"


@pytest.mark.parametrize("backend,path,on_gpu", COMBOS, ids=[f"{b}-{g}-{'gpu' if x else 'cpu'}" for b, g, x in COMBOS])
def test_build_grpo_config_builds(backend, path, on_gpu, tmp_path):
    ks = knobs(backend, path, on_gpu)
    built = config.build_grpo_config(ks, tmp_path, reward_weights=[1.0, 1.0, 1.0])  # raises on an unknown knob
    for k in ks:
        got = getattr(built, k.name)
        if k.name == "report_to":  # TrainingArguments normalises "none" to []
            assert got in ("none", [], ["none"]), got
        else:
            assert got == k.value, f"{k.name}: set {k.value!r}, config has {got!r}"


def test_sft_config_has_every_run_sft_keyword():
    from trl import SFTConfig

    missing = sft_config_names() - {f.name for f in dataclasses.fields(SFTConfig)}
    assert not missing, f"installed TRL's SFTConfig lacks {sorted(missing)} (run_sft would refuse them)"


def run_sft_until_trainer(monkeypatch, tmp_path, rows):
    """run_sft for real up to SFTTrainer(...): model loading is faked, the SFTConfig is real
    (an argument the installed SFTConfig lacks raises). Returns (SFTTrainer keywords,
    SFTTrainer.__init__ parameters)."""
    import transformers
    import trl

    class Stop(Exception):
        pass

    seen = {}
    init = set(inspect.signature(trl.SFTTrainer.__init__).parameters)  # before it is replaced below

    def fake_trainer(**kwargs):
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: object())
    monkeypatch.setattr(
        warmstart, "load_tokenizer", lambda source: SimpleNamespace(eos_token="<|im_end|>", pad_token="<|im_end|>")
    )
    monkeypatch.setattr(trl, "SFTTrainer", fake_trainer)
    with pytest.raises(Stop):
        warmstart.run_sft("unused", rows[:4], PROFILES["smoke"], tmp_path, force=True)
    monkeypatch.undo()
    return seen, init


def test_run_sft_builds_its_config_and_trainer(monkeypatch, tmp_path, train_rows):
    import trl

    seen, init = run_sft_until_trainer(monkeypatch, tmp_path, train_rows)
    assert isinstance(seen["args"], trl.SFTConfig)
    assert seen["args"].max_length is None  # no target cut: the longest traces pass TRL's default 1,024 tokens
    assert set(seen) <= init and set(seen) == keywords(FN["run_sft"], "SFTTrainer")


def test_the_warm_start_prints_a_line_per_step(monkeypatch, tmp_path, train_rows, capsys):
    """Issue 25: notebook 04's warm start sat silent for 92 s in the headless run (tqdm off there)."""
    from utils.train.callbacks import ProgressPrinter

    seen, _ = run_sft_until_trainer(monkeypatch, tmp_path, train_rows)
    assert [type(cb) for cb in seen["callbacks"]] == [ProgressPrinter]
    assert seen["callbacks"][0].label == "warm start"
    assert "Warm-start: 4 problems" in capsys.readouterr().out


def test_no_deprecated_arguments(monkeypatch, tmp_path, train_rows):
    """Arguments the installed TRL warns are deprecated: they work today and vanish in a later TRL."""
    ours = grpo_config_names() | sft_config_names()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with contextlib.redirect_stdout(io.StringIO()):
            for b, g, gpu in COMBOS:
                config.build_grpo_config(knobs(b, g, gpu), tmp_path / "grpo", reward_weights=[1.0])
        run_sft_until_trainer(monkeypatch, tmp_path / "sft", train_rows)
    named = {
        m
        for w in caught
        if issubclass(w.category, (FutureWarning, DeprecationWarning))
        for m in re.findall(r"`(\w+)`", str(w.message))
        if m in ours and "deprecated" in str(w.message)
    }
    assert not named, f"deprecated in the installed TRL: {sorted(named)}"


@pytest.mark.parametrize("trainer_class,fn", [("GRPOTrainer", "build_trainer"), ("SFTTrainer", "run_sft")])
def test_trainer_keywords(trainer_class, fn):
    import trl

    used = keywords(FN[fn], trainer_class)
    params = set(inspect.signature(getattr(trl, trainer_class).__init__).parameters)
    assert used <= params, f"installed {trainer_class}.__init__ lacks {sorted(used - params)}"


def test_lora_config_keywords_and_build():
    from peft import LoraConfig

    used = keywords(FN["lora_config"], "LoraConfig")
    assert used <= {f.name for f in dataclasses.fields(LoraConfig)}
    for profile in PROFILES.values():
        cfg = config.lora_config(profile)
        assert cfg.r == profile.grpo.lora_r and set(cfg.target_modules) == set(config.LORA_TARGETS)


def reward_contract(tree: cs.SourceTree) -> dict:
    """How GRPOTrainer calls a plain reward function, read from trl/trainer/grpo_trainer.py."""
    fn = tree.function("trl.trainer.grpo_trainer", "GRPOTrainer._calculate_rewards")
    calls = [
        c
        for c in ast.walk(fn)
        if isinstance(c, ast.Call)
        and any(k.arg is None for k in c.keywords)
        and {k.arg for k in c.keywords} >= {"completions"}
    ]
    assert calls, "GRPOTrainer._calculate_rewards no longer calls reward functions with keywords"
    splats = {cs.dotted(k.value) for c in calls for k in c.keywords if k.arg is None}
    extras = {
        n.targets[0].slice.value
        for n in ast.walk(fn)
        if isinstance(n, ast.Assign)
        and isinstance(n.targets[0], ast.Subscript)
        and cs.dotted(n.targets[0].value) in splats
        and isinstance(n.targets[0].slice, ast.Constant)
    }
    column_filters = [
        n
        for n in ast.walk(fn)
        if isinstance(n, ast.ListComp)
        and any(isinstance(g.iter, ast.Subscript) and cs.dotted(g.iter.value) == "inputs" for g in n.generators)
    ]
    assert column_filters, "GRPOTrainer._calculate_rewards no longer takes the reward columns from inputs[0]"
    excluded = {
        e.value
        for lc in column_filters
        for n in ast.walk(lc)
        if isinstance(n, ast.Compare) and isinstance(n.ops[0], ast.NotIn)
        for c in n.comparators
        if isinstance(c, (ast.List, ast.Tuple))
        for e in c.elts
        if isinstance(e, ast.Constant)
    }
    return {
        "keywords": set.intersection(*({k.arg for k in c.keywords if k.arg} for c in calls)),
        "splat": splats,
        "extras": extras,
        "excluded_columns": excluded,
    }


def check_reward_contract(contract: dict, rows) -> None:
    assert TRL_REWARD_ARGS <= contract["keywords"], contract
    assert contract["splat"], "dataset columns are no longer passed as **kwargs"
    records = trainer.grpo_records(rows[:2])
    columns = {
        k: [r[k] for r in records for _ in range(2)] for k in records[0] if k not in contract["excluded_columns"]
    }
    clash = set(columns) & (contract["extras"] | contract["keywords"])
    assert not clash, f"dataset columns {clash} collide with what TRL passes itself"
    from utils.rewards import LIBRARY_REWARDS
    from utils.train.callbacks import CompletionRecorder

    completions = [
        [{"role": "assistant", "content": t}]
        for t in ["<think>x</think><schedule></schedule>", "no format"] * len(records)
    ]
    kwargs = {
        "prompts": [r["prompt"] for r in records for _ in range(2)],
        "completions": completions,
        "completion_ids": [[1, 2, 3]] * len(completions),
        **columns,
        **{name: (lambda *a, **k: None) for name in contract["extras"]},
        "trainer_state": SimpleNamespace(global_step=0, max_steps=1, epoch=0.0),
    }
    funcs = list(LIBRARY_REWARDS.values())
    recorder = CompletionRecorder(funcs, Path("/dev/null"))
    for fn in funcs + recorder.wrapped:
        values = fn(**kwargs)
        assert len(values) == len(completions), fn.__name__
        assert all(v is None or isinstance(v, (int, float)) for v in values), (fn.__name__, values)


def installed_tree() -> cs.SourceTree:
    return cs.SourceTree({p: cs.InstalledSource(p) for p in ("trl", "transformers", "peft")}, ALIASES)


def test_reward_functions_take_what_installed_trl_passes(train_rows):
    check_reward_contract(reward_contract(installed_tree()), train_rows)


def test_ast_reader_agrees_with_the_installed_packages():
    """The Colab checks read classes with ast; on the installed set that must give what
    dataclasses / inspect give, or the Colab checks would prove nothing."""
    import trl
    from peft import LoraConfig

    tree = installed_tree()
    for module, name, cls in [
        ("trl.trainer.grpo_config", "GRPOConfig", trl.GRPOConfig),
        ("trl.trainer.sft_config", "SFTConfig", trl.SFTConfig),
        ("peft", "LoraConfig", LoraConfig),
    ]:
        assert tree.class_fields(module, name) == {f.name for f in dataclasses.fields(cls)}, name
    for module, name in [("trl.trainer.grpo_trainer", "GRPOTrainer"), ("trl.trainer.sft_trainer", "SFTTrainer")]:
        params = tree.method_params(module, name, "__init__")
        assert params.names == set(inspect.signature(getattr(trl, name).__init__).parameters) - {"self"}


# ---------------------------------------------------------------- (b) the Colab sets
def colab_tree(set_name: str) -> SimpleNamespace:
    """SourceTree over one Colab set's pins (see the module docstring for what is fetched, and how)."""
    pins = cs.by_name(cs.read_requirements(cs.COLAB_SETS[set_name]))
    v = {name: str(cs.pinned_version(pins[name])) for name in cs.API_PINNED if name in pins}
    specs = [
        f"trl=={v['trl']}",
        f"unsloth=={v['unsloth']}",
        f"unsloth_zoo=={v['unsloth-zoo']}",
        f"peft=={cs.COLAB_PREINSTALLED['peft']}",
    ]  # Colab keeps its own peft (it fits peft>=0.18,<1)
    wheels = cs.pip_download(specs)
    sources = {spec.split("==")[0]: cs.WheelSource.local(path) for spec, path in wheels.items()}
    sources["transformers"] = cs.WheelSource("transformers", v["transformers"])
    vllm_version = None
    if "vllm" in pins:
        vllm_version = cs.wheel_version(pins["vllm"].url).public if pins["vllm"].url else v["vllm"]
        sources["vllm"] = cs.WheelSource("vllm", vllm_version)
    return SimpleNamespace(tree=cs.SourceTree(sources, ALIASES), versions=v, vllm=vllm_version, set=set_name)


@pytest.fixture(scope="module", params=sorted(cs.COLAB_SETS))
def colab(request):
    """Each Colab set in turn (ampere, t4)."""
    return colab_tree(request.param)


@pytest.fixture(scope="module")
def colab_ampere():
    """The set with vLLM, for the vLLM checks."""
    return colab_tree("ampere")


@needs_index
def test_colab_grpo_config_has_every_knob(colab):
    fields = colab.tree.class_fields("trl.trainer.grpo_config", "GRPOConfig")
    missing = grpo_config_names() - fields
    assert not missing, f"GRPOConfig of trl {colab.versions['trl']} (Colab) lacks {sorted(missing)}"


@needs_index
def test_colab_sft_config_has_every_run_sft_keyword(colab):
    missing = sft_config_names() - colab.tree.class_fields("trl.trainer.sft_config", "SFTConfig")
    assert not missing, f"SFTConfig of trl {colab.versions['trl']} (Colab) lacks {sorted(missing)}"


@needs_index
@pytest.mark.parametrize(
    "trainer_class,fn,module",
    [
        ("GRPOTrainer", "build_trainer", "trl.trainer.grpo_trainer"),
        ("SFTTrainer", "run_sft", "trl.trainer.sft_trainer"),
    ],
)
def test_colab_trainer_keywords(colab, trainer_class, fn, module):
    params = colab.tree.method_params(module, trainer_class, "__init__")
    missing = {k for k in keywords(FN[fn], trainer_class) if not params.accepts(k)}
    assert not missing, f"{params.where} (Colab) lacks {sorted(missing)}"


@needs_index
@pytest.mark.parametrize("method", ["from_pretrained", "get_peft_model"])
def test_colab_unsloth_fast_language_model(colab, method):
    """Every keyword load_policy passes must be a named parameter (not just swallowed by **kwargs)."""
    params = colab.tree.method_params("unsloth.models.loader", "FastLanguageModel", method)
    used = keywords(FN["load_policy"], f"FastLanguageModel.{method}")
    missing = used - params.names
    assert not missing, f"{params.where} (unsloth {colab.versions['unsloth']}) has no parameter {sorted(missing)}"


@needs_index
def test_colab_vllm_sampling_params_and_llm(colab_ampere):
    colab = colab_ampere
    fn = cs.function_def(GENERATION_AST, "generate_with_vllm")
    fields = colab.tree.class_fields("vllm.sampling_params", "SamplingParams")
    missing = keywords(fn, "SamplingParams") - fields
    assert not missing, f"vllm {colab.vllm} SamplingParams lacks {sorted(missing)}"
    llm = colab.tree.method_params("vllm.entrypoints.llm", "LLM", "__init__")
    engine = colab.tree.class_fields("vllm.engine.arg_utils", "EngineArgs") if llm.var_kw else set()
    missing = {k for k in keywords(fn, "LLM") if k not in llm.names and k not in engine}
    assert not missing, f"vllm {colab.vllm} LLM() accepts neither as a parameter nor an EngineArgs field: {missing}"


@needs_index
def test_colab_vllm_inside_trls_supported_range(colab_ampere):
    """TRL warns (and may misbehave) outside the vLLM range its import_utils names."""
    colab = colab_ampere
    from packaging.version import Version

    fn = colab.tree.function("trl.import_utils", "is_vllm_available")
    bounds = [
        Version(c.args[0].value)
        for c in ast.walk(fn)
        if isinstance(c, ast.Call) and cs.dotted(c.func) == "Version" and c.args and isinstance(c.args[0], ast.Constant)
    ]
    assert len(bounds) >= 2, "trl.import_utils.is_vllm_available no longer states a vLLM range"
    low, high = min(bounds), max(bounds)
    assert low <= Version(colab.vllm) <= high, f"vLLM {colab.vllm} outside TRL's supported {low}..{high}"


@needs_index
def test_colab_reward_functions_take_what_trl_passes(colab, train_rows):
    check_reward_contract(reward_contract(colab.tree), train_rows)


@needs_index
def test_colab_lora_config_keywords(colab):
    fields = colab.tree.class_fields("peft", "LoraConfig")
    missing = keywords(FN["lora_config"], "LoraConfig") - fields
    assert not missing, f"LoraConfig of Colab's peft {cs.COLAB_PREINSTALLED['peft']} lacks {sorted(missing)}"


# ---------------------------------------------------------------- (c) the T4 branch
def test_t4_set_pins_the_ampere_api_versions():
    """The T4 set trains with exactly the Ampere set's unsloth / transformers / trl, so every Colab
    test above holds for it at the same versions; it only lacks vLLM."""
    ampere = cs.by_name(cs.read_requirements(cs.COLAB_REQUIREMENTS))
    t4 = cs.by_name(cs.read_requirements(cs.COLAB_T4_REQUIREMENTS))
    for name in cs.API_PINNED:
        if name in cs.T4_OMITS:
            assert name not in t4, name
        else:
            assert cs.pinned_version(t4[name]) == cs.pinned_version(ampere[name]), name


@pytest.mark.parametrize("bf16_gpu", [True, False], ids=["ampere-bf16", "t4-fp16"])
@pytest.mark.parametrize("backend,path", list(itertools.product(BACKENDS, GEN_PATHS)))
def test_precision_on_both_gpu_kinds(monkeypatch, backend, path, bf16_gpu):
    """A T4 computes in fp16 only: the GRPO config asks for fp16 there and bf16 elsewhere, never both
    (TrainingArguments refuses both); the model loader picks the same dtype."""
    import torch

    from utils.llm import models

    monkeypatch.setattr(config, "bf16_supported", lambda: bf16_gpu)
    monkeypatch.setattr(models, "bf16_supported", lambda: bf16_gpu)
    values = {k.name: k.value for k in knobs(backend, path, True)}
    assert (values["bf16"], values["fp16"]) == (bf16_gpu, not bf16_gpu)
    assert models.default_dtype("cuda") == (torch.bfloat16 if bf16_gpu else torch.float16)


@pytest.mark.parametrize("purpose,backend", [("eval", "trl"), ("train", "trl"), ("train", "unsloth")])
def test_without_vllm_nothing_asks_for_it(monkeypatch, purpose, backend):
    """On the T4 set vLLM is not installed: a GPU then generates with transformers (or Unsloth's own
    generate), and no GRPO knob (use_vllm, Unsloth's fast_inference) asks for vLLM."""
    import utils.profiles

    monkeypatch.setattr(utils.profiles, "has_cuda", lambda: True)
    monkeypatch.setattr(generation, "vllm_usable", lambda: False)
    monkeypatch.delenv(generation.GENERATION_ENV, raising=False)
    choice = generation.choose_generation(purpose, backend)
    assert choice.path != "vllm" and "vLLM" in choice.reason, choice
    assert not {"use_vllm", "vllm_mode"} & {k.name for k in knobs(backend, choice.path, True)}
    fast = [
        kw.value
        for call in ast.walk(FN["load_policy"])
        if isinstance(call, ast.Call) and cs.dotted(call.func) == "FastLanguageModel.from_pretrained"
        for kw in call.keywords
        if kw.arg == "fast_inference"
    ]
    assert [ast.unparse(v) for v in fast] == ["gen_path == 'vllm'"], "Unsloth's vLLM engine must follow the path"


def test_trl_imports_without_vllm_at_the_t4_pin():
    """trl imports its vLLM client only when vLLM is installed; the CPU set has trl at the T4 pin and
    no vLLM, so importing GRPOTrainer here is the T4 branch's import."""
    import importlib.metadata as md
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here: this environment cannot stand in for the T4 set")
    t4 = cs.by_name(cs.read_requirements(cs.COLAB_T4_REQUIREMENTS))
    assert md.version("trl") == str(cs.pinned_version(t4["trl"]))
    from trl import GRPOConfig, GRPOTrainer  # noqa: F401
