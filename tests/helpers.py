"""Small builders shared by the tests."""

#: The answer format's tags, open and close (the fuzz tests build answers from them).
ANSWER_TAGS = [f"<{end}{tag}>" for tag in ("think", "schedule", "event", "name", "start", "end") for end in ("", "/")]


def tiny_llama(tok, seed: int = 0, **config):
    """A 2-layer random Llama over the course tokenizer: the real code paths at a tiny cost."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        **config,
    )
    model = LlamaForCausalLM(cfg)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    return model


def script_module(name: str):
    """``scripts/<name>.py`` loaded as a module (the scripts are tools, not a package: no sys.path edit)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
