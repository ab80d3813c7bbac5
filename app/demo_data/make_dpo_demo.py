"""Generate dpo_demo.jsonl: preference pairs for the DPO demo (prompt / chosen / rejected).

Each prompt is a customer message or a simple factual question. The chosen reply is polite and
correct; the rejected one is either rude (right facts, bad manners) or wrong (polite, bad facts),
so DPO has two separate things to learn and rewards/accuracies has room to climb.

    python -m app.demo_data.make_dpo_demo
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUTPUT = Path(__file__).with_name("dpo_demo.jsonl")
SEED = 20240612
COUNT = 100

# (customer message, helpful reply, rude reply) for support-style prompts.
SUPPORT = [
    ("Where is my order {order}?",
     "Sorry for the wait! Order {order} left our warehouse yesterday and should arrive within two "
     "days. I can send you the tracking link if you like.",
     "Check the website. I'm not your personal tracker."),
    ("I was charged twice for order {order}.",
     "I'm sorry about that. I can see the duplicate charge on order {order} and have refunded it; "
     "it will show on your card within 3-5 business days.",
     "Banks make mistakes, not us. Call them."),
    ("Can I change the delivery address for order {order}?",
     "Of course! Order {order} has not shipped yet, so reply with the new address and I'll update "
     "it right away.",
     "You should have typed it correctly the first time."),
    ("The {item} I received for order {order} is broken.",
     "I'm really sorry the {item} arrived broken. I've started a free replacement for order "
     "{order}; you don't need to send the broken one back.",
     "It worked when it left us. Not our problem."),
    ("How do I return the {item} from order {order}?",
     "Happy to help! Print the free return label from your account page, pack the {item}, and "
     "drop it at any post office. The refund follows within a week.",
     "Figure it out, the instructions are somewhere on the site."),
    ("Do you ship the {item} to {country}?",
     "Yes, we ship the {item} to {country}! Delivery usually takes 5-7 business days, and you'll "
     "see the exact cost at checkout.",
     "Why would anyone ship there? Look it up yourself."),
    ("My discount code for the {item} is not working.",
     "Sorry about that! Codes only apply to full-price items, and the {item} is already on sale. "
     "I've added a 10% credit to your account instead.",
     "Then don't use it. Pay full price like everyone else."),
]
ORDERS = [f"#{n}" for n in range(4810, 4899, 7)]
ITEMS = ["kettle", "lamp", "backpack", "keyboard", "blender", "desk chair", "headphones", "mug"]
COUNTRIES = ["Canada", "Portugal", "Japan", "Kenya", "Chile", "Norway"]

# (question, correct answer, wrong answer) for factual prompts: chosen is right, rejected wrong.
FACTS = [
    ("What is {a} + {b}?", "{a} + {b} = {sum}. Happy to help with more sums!",
     "{a} + {b} = {wrong}. Hope that helps!"),
    ("How many minutes are in {h} hours?",
     "There are {minutes} minutes in {h} hours (60 per hour).",
     "There are {wrong_minutes} minutes in {h} hours."),
    ("What is the capital of {country}?", "The capital of {country} is {capital}.",
     "The capital of {country} is {wrong_capital}."),
]
CAPITALS = {"Canada": "Ottawa", "Portugal": "Lisbon", "Japan": "Tokyo", "Kenya": "Nairobi",
            "Chile": "Santiago", "Norway": "Oslo", "Australia": "Canberra", "Brazil": "Brasília"}


def make_pair(rng: random.Random) -> dict[str, str]:
    """One prompt with a chosen (polite, right) and a rejected (rude or wrong) reply."""
    words: dict[str, object]
    if rng.random() < 0.65:
        prompt, chosen, rejected = rng.choice(SUPPORT)
        words = {"order": rng.choice(ORDERS), "item": rng.choice(ITEMS),
                 "country": rng.choice(COUNTRIES)}
    else:
        prompt, chosen, rejected = rng.choice(FACTS)
        a, b, hours = rng.randint(3, 60), rng.randint(3, 40), rng.randint(2, 9)
        country = rng.choice(sorted(CAPITALS))
        wrong_capital = rng.choice([c for k, c in CAPITALS.items() if k != country])
        words = {"a": a, "b": b, "sum": a + b, "wrong": a + b + rng.choice([-2, -1, 1, 3]),
                 "h": hours, "minutes": hours * 60, "wrong_minutes": hours * 100,
                 "country": country, "capital": CAPITALS[country], "wrong_capital": wrong_capital}
    return {"prompt": prompt.format(**words), "chosen": " " + chosen.format(**words),
            "rejected": " " + rejected.format(**words)}


def make_pairs(count: int = COUNT, seed: int = SEED) -> list[dict[str, str]]:
    """``count`` pairs with distinct prompts, the same ones for the same seed."""
    rng = random.Random(seed)
    pairs: list[dict[str, str]] = []
    seen: set[str] = set()
    while len(pairs) < count:
        pair = make_pair(rng)
        if pair["prompt"] not in seen:
            seen.add(pair["prompt"])
            pairs.append(pair)
    return pairs


def to_jsonl(pairs: list[dict[str, str]]) -> str:
    return "".join(json.dumps(pair, ensure_ascii=False) + "\n" for pair in pairs)


if __name__ == "__main__":
    OUTPUT.write_text(to_jsonl(make_pairs()), encoding="utf-8")
    print(f"wrote {COUNT} preference pairs to {OUTPUT}")
