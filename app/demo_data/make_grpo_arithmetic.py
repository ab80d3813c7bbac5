"""Generate grpo_arithmetic.jsonl: small arithmetic word problems for the GRPO demo.

Numbers stay small (two-digit sums and differences, single-digit products) so that a
135M-parameter model gets some right from the start; GRPO needs that variance to learn.

    python -m app.demo_data.make_grpo_arithmetic
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUTPUT = Path(__file__).with_name("grpo_arithmetic.jsonl")
SEED = 20240611
COUNT = 200

NAMES = ["Sam", "Mia", "Leo", "Ava", "Noah", "Zoe", "Omar", "Lena", "Ben", "Ines", "Ravi", "Kim"]
ITEMS = ["apples", "marbles", "stickers", "pencils", "cookies", "books", "shells", "coins"]
CONTAINERS = ["boxes", "bags", "jars", "baskets", "packs"]

ADD = [
    "{name} has {a} {item} and buys {b} more. How many {item} does {name} have now?",
    "{name} picked {a} {item} in the morning and {b} in the afternoon. How many {item} did "
    "{name} pick in total?",
    "There are {a} {item} on a table and {name} puts {b} more on it. How many {item} are on "
    "the table?",
]
SUBTRACT = [
    "{name} has {a} {item} and gives {b} to a friend. How many {item} does {name} have left?",
    "A shop had {a} {item} and sold {b} of them. How many {item} are left in the shop?",
    "{name} needs {a} {item} and already has {b}. How many more {item} does {name} need?",
]
MULTIPLY = [
    "{name} has {a} {container} with {b} {item} in each. How many {item} does {name} have?",
    "Each of {a} friends gives {name} {b} {item}. How many {item} does {name} get?",
    "{name} buys {a} {container} of {item}, and each holds {b}. How many {item} is that?",
]


def make_problem(rng: random.Random) -> dict[str, str]:
    """One word problem and its answer as a string of digits."""
    kind = rng.choice(["add", "subtract", "multiply"])
    words = {"name": rng.choice(NAMES), "item": rng.choice(ITEMS)}
    if kind == "add":
        a, b = rng.randint(2, 60), rng.randint(2, 39)
        template, answer = rng.choice(ADD), a + b
    elif kind == "subtract":
        a = rng.randint(5, 99)
        b = rng.randint(1, a - 1)  # never a negative or zero answer
        template, answer = rng.choice(SUBTRACT), a - b
    else:
        a, b = rng.randint(2, 9), rng.randint(2, 9)
        template, answer = rng.choice(MULTIPLY), a * b
        words["container"] = rng.choice(CONTAINERS)
    return {"prompt": template.format(a=a, b=b, **words), "answer": str(answer)}


def make_problems(count: int = COUNT, seed: int = SEED) -> list[dict[str, str]]:
    """``count`` distinct problems, the same ones for the same seed."""
    rng = random.Random(seed)
    problems: list[dict[str, str]] = []
    seen: set[str] = set()
    while len(problems) < count:
        problem = make_problem(rng)
        if problem["prompt"] not in seen:
            seen.add(problem["prompt"])
            problems.append(problem)
    return problems


def to_jsonl(problems: list[dict[str, str]]) -> str:
    return "".join(json.dumps(problem) + "\n" for problem in problems)


if __name__ == "__main__":
    OUTPUT.write_text(to_jsonl(make_problems()), encoding="utf-8")
    print(f"wrote {COUNT} problems to {OUTPUT}")
