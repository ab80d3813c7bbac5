"""Preference rows whose prompt is implicit: ``{"chosen": …, "rejected": …}`` with the prompt at
the start of both, as TRL's DPO accepts them (standard text or conversations).

The shared start is split off as the prompt the way TRL's ``extract_prompt`` does it, once, at
upload: preview, token counts, training and evaluation then see the rows exactly as DPO trains
on them. Pure functions, no TRL import.
"""

from __future__ import annotations

from typing import Any

from app.domain.dataset_rules import DatasetError


def split_implicit_prompt(row: dict[str, Any]) -> dict[str, Any]:
    """The row with ``prompt`` (the longest shared start) and the rest of chosen and rejected.

    Conversations share whole turns (up to the first that differs), text shares characters (a
    space before the difference goes with the answers). DatasetError when nothing is shared
    (such a row needs its prompt column).
    """
    chosen, rejected = row["chosen"], row["rejected"]
    if not (isinstance(chosen, list) and isinstance(rejected, list)):
        chosen, rejected = str(chosen), str(rejected)
    index = 0
    while index < min(len(chosen), len(rejected)) and chosen[index] == rejected[index]:
        index += 1
    if index > 0 and chosen[index - 1] == " ":  # as TRL: the space goes with the answers
        index -= 1
    prompt, chosen_rest, rejected_rest = chosen[:index], chosen[index:], rejected[index:]
    if not prompt or not chosen_rest or not rejected_rest:
        raise DatasetError("chosen and rejected share no prompt at their start (or one is the "
                           "other's start): add a prompt column")
    return {"prompt": prompt, **row, "chosen": chosen_rest, "rejected": rejected_rest}
