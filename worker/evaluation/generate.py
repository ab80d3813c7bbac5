"""Batched generation and log-probs with a base model and, optionally, its LoRA adapter.

The base model is loaded once; the adapter is attached with ``PeftModel`` and switched off with
``model.disable_adapter()`` for the base model's outputs, so both answer from one copy of the
weights.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.domain.evaluation_rows import Prompt


@dataclass
class Sampling:
    max_new_tokens: int = 64
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int = 0


class Models:
    """The base model, its tokenizer, and the adapter when there is one."""

    def __init__(self, model: Any, tokenizer: Any, *, has_adapter: bool) -> None:
        self.model, self.tokenizer, self.has_adapter = model, tokenizer, has_adapter

    @contextmanager
    def use(self, which: str) -> Iterator[Any]:
        """``with models.use("base")`` / ``use("tuned")``: the model answering as that one."""
        if which == "tuned" and not self.has_adapter:
            raise ValueError("no adapter loaded: only the base model can answer")
        switch = self.model.disable_adapter() if which == "base" and self.has_adapter else (
            nullcontext())
        with switch:
            yield self.model


def load_models(base_model: str, adapter_dir: Path | None, *, cache_dir: Path) -> Models:
    import torch

    from worker.training.models import load_model_and_tokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, tokenizer = load_model_and_tokenizer(base_model, cache_dir, device=device)
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir))
    model.eval()
    return Models(model, tokenizer, has_adapter=adapter_dir is not None)


def render_prompt(prompt: Prompt, tokenizer: Any) -> str:
    """Conversations through the chat template (with the assistant turn opened); strings as is,
    as TRL trains on them."""
    if isinstance(prompt, list):
        return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    return prompt


def render_answer(prompt: Prompt, answer: Prompt) -> tuple[Prompt, Any]:
    """(prompt, prompt + answer) in one representation: both strings or both conversations."""
    if isinstance(prompt, str) and isinstance(answer, str):
        return prompt, prompt + answer
    turns = prompt if isinstance(prompt, list) else (
        [{"role": "user", "content": prompt}] if prompt else [])
    reply = answer if isinstance(answer, list) else [{"role": "assistant", "content": answer}]
    return turns, turns + reply


def generate(
    model: Any, tokenizer: Any, prompts: Sequence[Prompt], sampling: Sampling, *,
    batch_size: int = 16, on_batch: Callable[[int], None] | None = None,
    counts: list[tuple[int, int]] | None = None,
) -> list[str]:
    """One ``generate`` call per batch of prompts, left-padded so every answer starts at the end.
    ``batch_size=1`` is the one-at-a-time baseline. ``counts``, when given, gets one
    (prompt tokens, generated tokens up to and including the end token) per prompt."""
    import torch

    texts = [render_prompt(p, tokenizer) for p in prompts]
    tokenizer.padding_side = "left"
    outputs: list[str] = []
    sample = sampling.temperature > 0
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start:start + batch_size], return_tensors="pt", padding=True,
                          add_special_tokens=False).to(model.device)
        options: dict[str, Any] = {"do_sample": sample, "max_new_tokens": sampling.max_new_tokens,
                                   "pad_token_id": tokenizer.pad_token_id}
        if sample:
            torch.manual_seed(sampling.seed + start)
            options |= {"temperature": sampling.temperature, "top_p": sampling.top_p}
        else:  # NB: an instruct model's generation_config may carry sampling defaults
            options |= {"temperature": None, "top_p": None, "top_k": None}
        with torch.inference_mode():
            generated = model.generate(**batch, **options)
        new_tokens = generated[:, batch["input_ids"].shape[1]:]
        outputs += tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        if counts is not None:
            counts += [(int(mask.sum()), _answer_length(row.tolist(), tokenizer.eos_token_id))
                       for mask, row in zip(batch["attention_mask"], new_tokens, strict=True)]
        if on_batch:
            on_batch(len(outputs))
    return outputs


def _answer_length(ids: list[int], eos: int | list[int] | None) -> int:
    """Generated tokens up to and including the first end token (the rest is padding)."""
    ends = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
    return next((i + 1 for i, token in enumerate(ids) if token in ends), len(ids))


def answer_logprobs(
    model: Any, tokenizer: Any, prompts: Sequence[Prompt], answers: Sequence[Prompt], *,
    batch_size: int = 8,
) -> list[tuple[float, int]]:
    """(sum of log-probs, token count) of each answer given its prompt: one forward pass per
    batch, right-padded, prompt tokens masked out."""
    import torch

    sequences: list[tuple[list[int], int]] = []
    for prompt, answer in zip(prompts, answers, strict=True):
        prompt_part, full = render_answer(prompt, answer)
        prompt_ids = _ids(tokenizer, render_prompt(prompt_part, tokenizer) if prompt_part else "")
        full_text = (tokenizer.apply_chat_template(full, tokenize=False)
                     if isinstance(full, list) else full)
        full_ids = _ids(tokenizer, full_text)
        sequences.append((full_ids, min(len(prompt_ids), len(full_ids))))
    results: list[tuple[float, int]] = []
    pad = tokenizer.pad_token_id
    for start in range(0, len(sequences), batch_size):
        chunk = sequences[start:start + batch_size]
        width = max(len(ids) for ids, _ in chunk)
        input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in chunk])
        mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in chunk])
        with torch.inference_mode():
            logits = model(input_ids=input_ids.to(model.device),
                           attention_mask=mask.to(model.device)).logits.float()
        logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
        targets = input_ids[:, 1:].to(logits.device)
        picked = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1).cpu()
        for row, (ids, prompt_len) in enumerate(chunk):
            # Position i predicts token i + 1: the answer's tokens are prompt_len .. len(ids) - 1.
            first = max(prompt_len, 1) - 1
            values = picked[row, first:len(ids) - 1]
            results.append((float(values.sum()), int(values.numel())))
    return results


def _ids(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
