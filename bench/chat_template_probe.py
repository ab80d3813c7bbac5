"""Does the chat template help SmolLM2-135M-Instruct answer the GRPO arithmetic demo?

    python bench/chat_template_probe.py [--rows 48] [--repeats 2] [--max-new-tokens 64]

Samples completions of the base model (no adapter) for the demo's prompts formatted three ways:
the raw string (what TRL's standard format gave an instruct model before chat_template existed),
the chat template with no system prompt (chat_template "auto", the default now), and the chat
template with a short system prompt asking for <answer> tags. Prints the share answered right
(exact_answer's rule: <answer> tags, a #### line, else the last number) and the share using tags.
GRPO learns only from reward differences inside a prompt's group, so a base model that is almost
never right gives it nothing to learn from.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATASET = ROOT / "app" / "demo_data" / "grpo_arithmetic.jsonl"
SHORT = ("Solve the math problem. Think briefly, then give the final number inside "
         "<answer></answer> tags.")
MODES = ("raw string", "chat template", "chat + system prompt")


def formatted(prompt: str, mode: str, tokenizer) -> str:
    if mode == "raw string":
        return prompt
    messages = [{"role": "user", "content": prompt}]
    if mode == "chat + system prompt":
        messages = [{"role": "system", "content": SHORT}, *messages]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    from app.domain.rewards.extract import answers_equal, extract_answer, tag_blocks
    from worker.training.models import load_model_and_tokenizer

    rows = [json.loads(line) for line in DATASET.read_text().splitlines()][: args.rows]
    cache = Path(tempfile.gettempdir()) / "tunedeck-bench-models"
    model, tokenizer = load_model_and_tokenizer("smollm2-135m-instruct", cache, device="cpu")
    tokenizer.padding_side = "left"
    print(f"{len(rows)} prompts x {args.repeats}, {args.max_new_tokens} new tokens, "
          "temperature 0.9 (GRPO's sampling)")
    print(f"{'format':<22} {'right':>7} {'tags':>6} {'seconds':>8}")
    for mode in MODES:
        torch.manual_seed(args.seed)
        started, right, tagged, total = time.monotonic(), 0, 0, 0
        for _ in range(args.repeats):
            prompts = [formatted(row["prompt"], mode, tokenizer) for row in rows]
            encoded = tokenizer(prompts, return_tensors="pt", padding=True,
                                add_special_tokens=False)
            with torch.no_grad():
                output = model.generate(**encoded, max_new_tokens=args.max_new_tokens,
                                        do_sample=True, temperature=0.9,
                                        pad_token_id=tokenizer.pad_token_id)
            texts = tokenizer.batch_decode(output[:, encoded["input_ids"].shape[1]:],
                                           skip_special_tokens=True)
            for row, text in zip(rows, texts, strict=True):
                answer = extract_answer(text)
                right += answer is not None and answers_equal(answer, row["answer"])
                tagged += bool(tag_blocks(text, "answer"))
                total += 1
        print(f"{mode:<22} {right / total:>7.1%} {tagged / total:>6.1%} "
              f"{time.monotonic() - started:>8.0f}", flush=True)


if __name__ == "__main__":
    main()
