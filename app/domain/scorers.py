"""Per-example scorers for evaluations, by strategy, and the choice of scorers a user may make.

Pure functions, no I/O and no torch: the web app validates requests with ``resolve_scorers``; the
worker scores outputs with the rest. Log-probs come in already computed (see ``generate``).
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.domain.rewards import (
    REWARD_FUNCTIONS,
    RewardConfig,
    RewardConfigError,
    validate_reward_config,
)
from app.domain.rewards.run_rewards import build_run_rewards

# Scorers that are not reward functions: name → (label, higher is better, strategies).
BUILTIN_SCORERS: dict[str, tuple[str, bool, tuple[str, ...]]] = {
    "exact_match": ("Exact match", True, ("sft",)),
    "normalized_match": ("Normalised match", True, ("sft",)),
    "loss": ("Loss on references (per token)", False, ("sft",)),
    "preference_accuracy": ("Preference accuracy", True, ("dpo",)),
    "margin": ("Log-prob margin (chosen − rejected)", True, ("dpo",)),
    "reward_total": ("Weighted reward total", True, ("grpo",)),
}
DEFAULT_SCORERS = {
    "sft": ["exact_match", "normalized_match", "loss"],
    "dpo": ["preference_accuracy", "margin"],
    "grpo": ["reward_total"],  # plus each of the run's reward functions
}
# The score that decides "tuned better/worse than base" for one example, in order of preference.
PRIMARY = {"sft": ("loss", "normalized_match"), "dpo": ("margin",), "grpo": ("reward_total",)}


class ScorerError(ValueError):
    """A scorer that does not exist or does not apply to the strategy; the message says which."""


@dataclass(frozen=True)
class Scorer:
    name: str
    label: str
    higher_is_better: bool
    kind: str  # "builtin" or "reward"
    weight: float = 1.0
    params: Mapping[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "higher_is_better": self.higher_is_better,
                "kind": self.kind, "weight": self.weight, "params": dict(self.params or {})}


def resolve_scorers(
    strategy: str, requested: Sequence[str | Mapping[str, Any]] | None,
    run_rewards: Sequence[Mapping[str, Any]] = (),
) -> list[Scorer]:
    """The scorers an evaluation runs. GRPO always scores the run's own reward functions; SFT
    may add any built-in reward function; raises ScorerError naming the problem."""
    if strategy not in DEFAULT_SCORERS:
        raise ScorerError(f"unknown strategy {strategy!r}")
    items: list[str | Mapping[str, Any]] = list(requested or DEFAULT_SCORERS[strategy])
    scorers: dict[str, Scorer] = {}
    if strategy == "grpo":  # the run's own rewards (custom code included), validated at launch
        for reward in run_rewards:
            key = str(reward["name"])  # not `name`: that one is str | None below
            scorers[key] = Scorer(key, key if key != "custom" else "custom reward", True,
                                  "reward", float(reward.get("weight", 1.0)),
                                  dict(reward.get("params") or {}))
    for item in items:
        name = item if isinstance(item, str) else item.get("name")
        if not isinstance(name, str):
            raise ScorerError(f'scorer {item!r}: expected a name or {{"name": ..., "params": ...}}')
        if name in scorers:
            continue
        if name in BUILTIN_SCORERS:
            label, higher, strategies = BUILTIN_SCORERS[name]
            if strategy not in strategies:
                raise ScorerError(f"scorer {name!r} applies to {', '.join(strategies)} runs only")
            scorers[name] = Scorer(name, label, higher, "builtin")
        elif name in REWARD_FUNCTIONS:
            if strategy == "dpo":
                raise ScorerError(f"reward function {name!r} scores generated answers: DPO "
                                  "evaluations compare log-probs of given answers")
            config = {"name": name} if isinstance(item, str) else dict(item)
            try:
                (valid,) = validate_reward_config([config])
            except RewardConfigError as exc:
                raise ScorerError(str(exc)) from exc
            scorers[name] = Scorer(name, name, True, "reward", valid.weight, dict(valid.params))
        else:
            known = [*(n for n, v in BUILTIN_SCORERS.items() if strategy in v[2])]
            if strategy != "dpo":
                known += list(REWARD_FUNCTIONS)
            raise ScorerError(f"unknown scorer {name!r}; choose from: {', '.join(known)}")
    if strategy == "grpo" and "reward_total" not in scorers:
        label, higher, _ = BUILTIN_SCORERS["reward_total"]
        scorers["reward_total"] = Scorer("reward_total", label, higher, "builtin")
    return list(scorers.values())


def primary_score(strategy: str, names: Sequence[str]) -> str | None:
    return next((name for name in PRIMARY.get(strategy, ()) if name in names), None) or (
        names[0] if names else None
    )


# -- SFT ---------------------------------------------------------------------------------------
_PUNCTUATION = str.maketrans("", "", string.punctuation)
_SPACES = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Lower case, no punctuation, single spaces: "Word 1: AAA." and "word 1 aaa" match."""
    return _SPACES.sub(" ", text.lower().translate(_PUNCTUATION)).strip()


def exact_match(output: str, reference: str) -> float:
    return 1.0 if output.strip() == reference.strip() else 0.0


def normalized_match(output: str, reference: str) -> float:
    return 1.0 if normalize(output) == normalize(reference) else 0.0


def token_loss(sum_logprob: float, n_tokens: int) -> float:
    """Mean negative log-likelihood per reference token (NaN without tokens)."""
    return -sum_logprob / n_tokens if n_tokens else math.nan


def perplexity(losses: Sequence[float]) -> float | None:
    finite = [value for value in losses if math.isfinite(value)]
    return math.exp(sum(finite) / len(finite)) if finite else None


# -- DPO ---------------------------------------------------------------------------------------
def preference_scores(chosen_logprob: float, rejected_logprob: float) -> dict[str, float]:
    """Accuracy 1.0 when the chosen answer is more likely than the rejected one; the margin."""
    margin = chosen_logprob - rejected_logprob
    return {"preference_accuracy": 1.0 if margin > 0 else 0.0, "margin": margin}


# -- GRPO and reward scorers --------------------------------------------------------------------
def reward_scores(
    scorers: Sequence[Scorer], completions: Sequence[str], rows: Sequence[Mapping[str, Any]],
    *, tags: Any = None,
) -> list[dict[str, float]]:
    """Each reward scorer's score per completion, plus their weighted total (GRPO's reward).
    ``tags`` are the run's ReasoningTags (format rewards read them)."""
    rewards = [s for s in scorers if s.kind == "reward"]
    out: list[dict[str, float]] = [{} for _ in completions]
    columns = {key: [row.get(key) for row in rows] for key in (rows[0] if rows else {})}
    configs = [RewardConfig(s.name, s.weight, dict(s.params or {})) for s in rewards]
    functions, _ = build_run_rewards(configs, tags=tags) if configs else ([], [])
    for scorer, function in zip(rewards, functions, strict=True):
        values = function(completions=list(completions), **columns)
        for scores, value in zip(out, values, strict=True):
            scores[scorer.name] = float(value) if value is not None else math.nan
    if any(s.name == "reward_total" for s in scorers):
        for scores in out:
            scores["reward_total"] = sum(s.weight * scores[s.name] for s in rewards)
    return out


def pass_at_k(n: int, correct: int, k: int) -> float:
    """Unbiased pass@k (Chen et al., 2021): chance that k of n samples hold a correct one."""
    if not 0 < k <= n or not 0 <= correct <= n:
        raise ValueError(f"pass@k needs 0 < k <= n and 0 <= correct <= n: {n=} {correct=} {k=}")
    if n - correct < k:
        return 1.0
    return 1.0 - math.comb(n - correct, k) / math.comb(n, k)


def sample_summary(totals: Sequence[float], *, k: int, pass_threshold: float) -> dict[str, float]:
    """Mean reward over k samples, and pass@k where a sample passes at ``pass_threshold``."""
    correct = sum(1 for value in totals if value >= pass_threshold)
    return {"sample_mean": sum(totals) / len(totals),
            f"pass@{k}": pass_at_k(len(totals), correct, k)}


# -- per-example comparison --------------------------------------------------------------------
def compare_example(
    base: Mapping[str, Any], tuned: Mapping[str, Any], *, score: str, higher_is_better: bool
) -> str:
    """"better", "worse" or "same" for the tuned output of one example on ``score``."""
    b, t = base.get(score), tuned.get(score)
    if not isinstance(b, int | float) or not isinstance(t, int | float) or b == t:
        return "same"
    if not (math.isfinite(b) and math.isfinite(t)):
        return "same"
    return "better" if (t > b) == higher_is_better else "worse"
