"""Models and generation, shared by training (05) and evaluation (06).

:mod:`.models` - the model table, the embedded model (offline), loading, merging an adapter;
:mod:`.generation` - the one place that picks how answers are generated, and batched generation;
:mod:`.attention` - the attention every loaded model uses: no left-pad query without a key (no NaN).
"""

from .generation import PATHS, GenerationChoice, choose_generation, generate_completions, model_completions, vllm_usable
from .models import (
    EMBEDDED_KEY,
    MODELS,
    ModelSpec,
    OfflineError,
    bf16_supported,
    choose_model,
    default_dtype,
    embedded_checkpoint,
    load_causal_lm,
    load_model,
    load_tokenizer,
    merge_and_save,
    model_source,
    resolve_source,
)
