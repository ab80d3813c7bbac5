"""Evaluation throughput: examples per second for batched vs one-at-a-time greedy generation with
smollm2-135m-instruct on this machine's CPU (target: batching ≥ 3× faster).

    python bench/eval_throughput.py [--examples 16] [--batch-size 16] [--max-new-tokens 8]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROMPTS = ["What is {a} plus {b}?", "Name a city in country number {a}.",
           "Write one sentence about the number {b}.", "Translate 'cat {a}' into French."]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    args = parser.parse_args()

    import torch

    from app.core.config import settings
    from worker.evaluation.generate import Sampling, generate, load_models

    torch.manual_seed(0)
    models = load_models(args.model, None, cache_dir=settings.model_cache_dir)
    prompts = [[{"role": "user", "content": PROMPTS[i % 4].format(a=i, b=i * 7 % 13)}]
               for i in range(args.examples)]
    # Every answer runs to max_new_tokens: both modes do the same amount of decoding.
    sampling = Sampling(max_new_tokens=args.max_new_tokens)
    models.model.generation_config.eos_token_id = None
    with models.use("base") as model:
        generate(model, models.tokenizer, prompts[:2], sampling, batch_size=2)  # warm-up
        timings = {}
        for label, batch_size in (("one at a time", 1), (f"batched ({args.batch_size})",
                                                         args.batch_size)):
            start = time.perf_counter()
            generate(model, models.tokenizer, prompts, sampling, batch_size=batch_size)
            timings[label] = args.examples / (time.perf_counter() - start)
    print(f"model {args.model}, {args.examples} examples, {args.max_new_tokens} new tokens each, "
          f"torch threads {torch.get_num_threads()}")
    for label, rate in timings.items():
        print(f"  {label:>16}: {rate:6.2f} examples/s")
    one, batched = timings.values()
    ratio = batched / one
    verdict = "OK" if ratio >= 3 else "MISSED"
    print(f"batched / one-at-a-time: {ratio:.2f}x (target >= 3x): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
