"""Generate sft_demo.jsonl: English sentences translated to pirate speak, for the SFT demo.

Most completions follow the same few rules (open with "Arr!", swap a fixed set of words, end
with "!"), so a small model picks up the style within a few dozen steps and the change is plain
to see in its samples; ten fixed phrases add the classic greetings.

    python -m app.demo_data.make_sft_demo
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUTPUT = Path(__file__).with_name("sft_demo.jsonl")
SEED = 20240612
COUNT = 150
INSTRUCTION = "Translate to pirate speak: "

# (English, pirate) pairs; a sentence is subject + verb + object + place.
SUBJECTS = [
    ("I", "I"),
    ("We", "We"),
    ("You", "Ye"),
    ("My friend", "Me matey"),
    ("The captain", "Th' cap'n"),
    ("The crew", "Th' crew"),
    ("My brother", "Me brother"),
    ("The old sailor", "Th' ol' sea dog"),
    ("Your parrot", "Yer parrot"),
]
VERBS = [
    ("found", "found"),
    ("lost", "lost"),
    ("saw", "spied"),
    ("hid", "stashed"),
    ("stole", "plundered"),
    ("buried", "buried"),
    ("cleaned", "swabbed"),
    ("sold", "sold"),
    ("wanted", "be wantin'"),
    ("looked for", "searched fer"),
]
OBJECTS = [
    ("the treasure", "th' booty"),
    ("the map", "th' map"),
    ("a bottle of rum", "a bottle o' grog"),
    ("the gold coins", "th' doubloons"),
    ("my hat", "me hat"),
    ("the old ship", "th' ol' vessel"),
    ("a green parrot", "a green parrot"),
    ("the key to the chest", "th' key t' th' chest"),
    ("your boots", "yer boots"),
    ("the money", "th' loot"),
    ("the deck", "th' deck"),
]
PLACES = [
    ("near the beach", "near th' shore"),
    ("on the island", "on th' isle"),
    ("at the tavern", "at th' tavern"),
    ("in the harbor", "in th' port"),
    ("before dinner", "afore supper"),
    ("yesterday", "yesterday"),
    ("", ""),
]
# Fixed phrases that no template produces, so the demo also shows the classic greetings.
PHRASES = [
    ("Hello, my friend.", "Ahoy, me hearty!"),
    ("Yes, I agree.", "Aye, that I do!"),
    ("Where is the treasure?", "Where be th' booty?"),
    ("Stop right there.", "Avast, stay where ye be!"),
    ("Everyone get to work.", "All hands on deck!"),
    ("Goodbye, see you soon.", "Fair winds t' ye, matey!"),
    ("Is this your ship?", "Be this yer vessel?"),
    ("I am very surprised.", "Shiver me timbers!"),
    ("Give me the money.", "Hand over th' loot!"),
    ("The sea is calm today.", "Th' briny deep be calm this day!"),
]


def make_sentence(rng: random.Random) -> tuple[str, str]:
    """One English sentence and its pirate translation."""
    (subject, p_subject), (verb, p_verb), (obj, p_obj), (place, p_place) = (
        rng.choice(SUBJECTS),
        rng.choice(VERBS),
        rng.choice(OBJECTS),
        rng.choice(PLACES),
    )
    english = " ".join(part for part in (subject, verb, obj, place) if part) + "."
    pirate = " ".join(part for part in (p_subject, p_verb, p_obj, p_place) if part) + "!"
    return english, f"Arr! {pirate}"


def make_rows(count: int = COUNT, seed: int = SEED) -> list[dict[str, str]]:
    """``count`` distinct prompt/completion rows, the same ones for the same seed."""
    rng = random.Random(seed)
    pairs = list(PHRASES)
    seen = {english for english, _ in pairs}
    while len(pairs) < count:
        english, pirate = make_sentence(rng)
        if english not in seen:
            seen.add(english)
            pairs.append((english, pirate))
    rng.shuffle(pairs)
    # TRL joins prompt and completion as they are: the leading space keeps the words apart.
    return [
        {"prompt": INSTRUCTION + english, "completion": " " + pirate} for english, pirate in pairs
    ]


def to_jsonl(rows: list[dict[str, str]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


if __name__ == "__main__":
    OUTPUT.write_text(to_jsonl(make_rows()), encoding="utf-8")
    print(f"wrote {COUNT} rows to {OUTPUT}")
