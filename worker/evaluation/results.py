"""From per-example scores to an evaluation's results: means, paired intervals, verdicts.

Pure: lists of score dicts in, a JSON-ready dict out (stored in ``evaluation.results``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from app.domain.scorers import Scorer, perplexity, primary_score
from worker.evaluation.bootstrap import paired_bootstrap, summary, verdict


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarise(
    scorers: Sequence[Scorer], base: Sequence[Mapping[str, Any]],
    tuned: Sequence[Mapping[str, Any]] | None, *, strategy: str,
    extra_scores: Sequence[tuple[str, str, bool]] = (),
) -> dict[str, Any]:
    """One entry per score: base and tuned means, tuned − base with its bootstrap interval and a
    verdict. ``tuned`` is None for a base-only evaluation. ``extra_scores`` are
    (name, label, higher is better) of scores beyond the scorers (e.g. pass@k)."""
    rows = [(s.name, s.label, s.higher_is_better) for s in scorers] + list(extra_scores)
    scores = []
    for name, label, higher in rows:
        entry: dict[str, Any] = {"name": name, "label": label, "higher_is_better": higher,
                                 "n": 0, "base_mean": None, "tuned_mean": None, "diff": None,
                                 "ci_low": None, "ci_high": None, "verdict": None,
                                 "summary": None}
        if tuned is None:
            values = [b[name] for b in base if _finite(b.get(name))]
            entry |= {"n": len(values), "base_mean": _mean(values)}
        else:
            pairs = [(b[name], t[name]) for b, t in zip(base, tuned, strict=True)
                     if _finite(b.get(name)) and _finite(t.get(name))]
            if pairs:
                base_values, tuned_values = [p[0] for p in pairs], [p[1] for p in pairs]
                interval = paired_bootstrap(base_values, tuned_values)
                entry |= {"n": len(pairs), "base_mean": _mean(base_values),
                          "tuned_mean": _mean(tuned_values), "diff": interval.mean,
                          "ci_low": interval.low, "ci_high": interval.high,
                          "verdict": verdict(interval, higher_is_better=higher),
                          "summary": summary(interval, higher_is_better=higher)}
        if name == "loss":
            entry["base_perplexity"] = perplexity([b["loss"] for b in base if "loss" in b])
            entry["tuned_perplexity"] = (
                perplexity([t["loss"] for t in tuned if "loss" in t]) if tuned else None)
        scores.append(entry)
    names = [s.name for s in scorers]
    primary = primary_score(strategy, names)
    higher = next((s.higher_is_better for s in scorers if s.name == primary), True)
    return {"scores": scores, "primary": primary, "primary_higher_is_better": higher,
            "examples": len(base), "paired": tuned is not None}
