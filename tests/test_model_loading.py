"""Where a model is loaded from: a local path that does not exist, or a Hub model on a machine
that is offline, is said in one line within seconds (issue 18, items 15 and 16)."""

import pytest

from utils.llm import choose_model, load_causal_lm, load_tokenizer, model_source


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No Hub: its address points at a closed port; an empty Hugging Face cache; no proxy."""
    from huggingface_hub import constants

    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    return tmp_path / "hf-cache"


def test_a_hub_model_offline_says_so(offline):
    """Issue 18.16: the Qwen models offline took 75 s of retries to fail (OfflineError is a RuntimeError)."""
    with pytest.raises(RuntimeError, match=r"Qwen/Qwen2\.5-0\.5B-Instruct is a Hugging Face Hub model.*offline"):
        model_source(choose_model("qwen2.5-0.5b"))
    for load in (load_tokenizer, lambda s: load_causal_lm(s, None)):
        with pytest.raises(RuntimeError, match="this machine is offline .*COURSE_MODEL=smollm2-135m") as info:
            load("Qwen/Qwen2.5-0.5B-Instruct")
        assert "\n" not in str(info.value)


def test_hf_hub_offline_is_respected(offline, monkeypatch):
    from huggingface_hub import constants

    from utils.llm.models import hub_offline_reason

    assert hub_offline_reason().startswith("127.0.0.1:9 cannot be reached")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert hub_offline_reason() == "HF_HUB_OFFLINE is set"


def test_offline_with_a_cached_copy_uses_it(offline, capsys):
    from utils.llm import resolve_source

    snapshot = offline / "models--Qwen--Qwen2.5-0.5B-Instruct" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (offline / "models--Qwen--Qwen2.5-0.5B-Instruct" / "refs").mkdir()
    (offline / "models--Qwen--Qwen2.5-0.5B-Instruct" / "refs" / "main").write_text("abc123")
    assert resolve_source("Qwen/Qwen2.5-0.5B-Instruct") == str(snapshot)
    assert "from the Hugging Face cache" in capsys.readouterr().out


def test_a_local_path_typo_is_not_called_a_hub_problem(tmp_path):
    """Issue 18.15: `--base ./no-such-folder` was reported as "could not load from the Hub ... needs internet"."""
    with pytest.raises(FileNotFoundError, match="the local model folder './no-such-folder' does not exist"):
        load_causal_lm("./no-such-folder", None)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_tokenizer("outputs/sft-smollm2-135m-smoke/finall")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="not a model folder"):
        load_tokenizer(str(tmp_path / "empty"))


@pytest.mark.parametrize(
    "source, local",
    [("./x", True), ("../x", True), ("/abs/x", True), ("~/x", True), ("outputs/sft/final", True), ("org/name", False)],
)
def test_paths_and_hub_ids_are_told_apart(source, local):
    from utils.llm.models import looks_local

    assert looks_local(source) is local


def test_loading_a_model_turns_off_the_weight_loading_bar_but_not_download_bars(tmp_path):
    """Issue 25: a "Loading weights 0%" bar stayed in notebook outputs outside the headless runner.
    Every loader resolves its source first, which turns transformers' own bars off; downloads keep theirs."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
    from transformers.utils import logging as hf_logging

    hub_was_off = are_progress_bars_disabled()
    try:
        hf_logging.enable_progress_bar()  # as a fresh kernel starts (it turns the Hub's on too)
        with pytest.raises(FileNotFoundError):
            load_tokenizer(str(tmp_path / "missing"))
        assert not hf_logging.is_progress_bar_enabled()
        assert not are_progress_bars_disabled()  # a 15 GB download still shows its bar
    finally:
        hf_logging.enable_progress_bar()
        if hub_was_off:
            disable_progress_bars()
        else:
            enable_progress_bars()


def test_a_small_lora_model_is_evaluated_as_trained_base_in_training_dtype_delta_in_fp32(
    tiny_model_dir, tmp_path, monkeypatch
):
    """On a GPU training loads the base in bf16 and keeps the LoRA delta apart; evaluation must run that model:
    the bf16 base upcast to fp32 (exact) plus the whole delta, not a bf16 merge that rounds the delta away."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    import utils.llm.models as models

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    trained = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"], init_lora_weights=False))
    trained.save_pretrained(tmp_path / "adapter")
    layer = trained.get_base_model().model.layers[0].self_attn.q_proj
    want = layer.get_base_layer().weight.detach().to(torch.bfloat16).float() + layer.get_delta_weight("default")

    monkeypatch.setattr(models, "default_dtype", lambda device: torch.bfloat16)  # as on a bf16 GPU
    model, _ = models.load_model(tiny_model_dir, device="cpu", adapter=tmp_path / "adapter")
    got = model.model.layers[0].self_attn.q_proj.weight
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.detach(), want.detach(), rtol=0, atol=1e-6)
