import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# CI runs on 2 cores: fewer examples, no per-example deadline (timing lives in benchmarks/).
settings.register_profile("ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=400, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(autouse=True)
def _isolated_outputs(tmp_path, monkeypatch):
    """Tests write into a temporary outputs folder, never into the learner's."""
    monkeypatch.setenv("COURSE_OUTPUT_DIR", str(tmp_path / "outputs"))


@pytest.fixture(scope="session")
def train_rows():
    from utils.paths import TRAIN_FILE
    from utils.task.data import load_jsonl

    return load_jsonl(TRAIN_FILE)


@pytest.fixture(scope="session")
def test_rows():
    from utils.paths import TEST_FILE
    from utils.task.data import load_jsonl

    return load_jsonl(TEST_FILE)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A 2-layer random Llama with the course tokenizer: the real code path, tiny compute."""
    pytest.importorskip("torch")

    from helpers import tiny_llama

    from utils.llm import embedded_checkpoint, load_tokenizer

    tok = load_tokenizer(str(embedded_checkpoint(verbose=False)))
    path = tmp_path_factory.mktemp("tiny")
    tiny_llama(tok).save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)
