"""The pure helpers behind the HTML pages: durations, numbers, stats, the run form's fields."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, Field

from app.api import page_helpers as h
from app.services.wizard.decision_tree import HYPERPARAMETER_PRESETS


@pytest.mark.parametrize(("seconds", "text"), [
    (None, ""), (float("nan"), ""), (-1, ""), (0, "0 s"), (44.6, "45 s"), (60, "1 min"),
    (130, "2 min 10 s"), (3600, "1 h"), (3900, "1 h 5 min"), (86400 * 2 + 3600 * 3, "2 d 3 h"),
])
def test_human_duration(seconds, text):
    assert h.human_duration(seconds) == text


@pytest.mark.parametrize(("value", "text"), [
    (None, "—"), (True, "true"), (1234567, "1,234,567"), (2.0, "2"), (0.0002, "0.0002"),
    (10.63749, "10.64"), (float("inf"), "inf"), ("linear", "linear"),
])
def test_number(value, text):
    assert h.number(value) == text


def test_short_metric_keeps_the_name_and_shortens_the_window():
    assert h.short_metric("loss (moving average of 5)") == "loss (avg)"
    assert h.short_metric("eval_loss") == "eval_loss"
    assert h.short_metric(None) == ""


STATS = {"num_rows": 3, "fields": {
    "prompt": {"tokens": {"min": 1, "mean": 2.5, "median": 2, "p95": 4, "max": 5},
               "chars": {"min": 3, "mean": 9.0, "median": 8, "p95": 14, "max": 15}},
    "total": {"tokens": {"min": 2, "mean": 7.25, "median": 7, "p95": 11.5, "max": 12},
              "chars": {"min": 6, "mean": 20.0, "median": 19, "p95": 30, "max": 31}},
}}


def test_token_summary_prefers_the_total_field():
    assert h.token_summary(STATS) == (7.25, 11.5)


@pytest.mark.parametrize("stats", [None, {}, {"fields": []}, {"fields": {"x": {"tokens": 3}}},
                                   {"mean": 4}])
def test_token_summary_of_unexpected_structures_is_none(stats):
    assert h.token_summary(stats) is None


def test_stats_rows_lists_every_field_and_unit_and_skips_malformed_ones():
    rows = h.stats_rows({**STATS, "fields": {**STATS["fields"], "broken": 3}})
    assert [(field, unit) for field, unit, _ in rows] == [
        ("prompt", "tokens"), ("prompt", "chars"), ("total", "tokens"), ("total", "chars")]
    assert rows[0][2] == [1, 2.5, 2, 4, 5]
    assert h.stats_rows("not a dict") == []


class Schema(BaseModel):
    seed: int = 42
    extra_choice: Literal["a", "b"] = "b"
    learning_rate: float = Field(2e-4, gt=0)
    eval_steps: int | None = None
    lora_target_modules: Literal["all-linear"] | list[str] = "all-linear"
    system_prompt: str | None = None
    max_steps: int = 60


def test_fields_follow_the_form_order_then_the_schema_order_with_kinds_and_defaults():
    fields = {f.name: f for f in h.fields_for_schema(Schema)}
    assert list(fields) == ["max_steps", "learning_rate", "eval_steps", "seed", "extra_choice",
                            "lora_target_modules", "system_prompt"]
    assert (fields["learning_rate"].kind, fields["learning_rate"].default) == ("float", "0.0002")
    assert (fields["eval_steps"].kind, fields["eval_steps"].optional) == ("int", True)
    assert fields["eval_steps"].default == ""
    assert (fields["extra_choice"].kind, fields["extra_choice"].choices) == ("choice", ("a", "b"))
    assert fields["lora_target_modules"].kind == "modules"
    assert (fields["system_prompt"].kind, fields["system_prompt"].optional) == ("text", True)
    assert fields["max_steps"].label == "Max steps"
    assert fields["extra_choice"].label == "Extra choice"


def test_sft_fields_come_from_the_worker_schema():
    from app.domain.hyperparameters import SFTHyperparameters

    fields = {f.name: f for f in h.hyperparameter_fields("sft")}
    # Placement (processes, hosts) is rendered once under "Where it runs", not per strategy.
    assert set(fields) == set(SFTHyperparameters.model_fields) - set(h.PLACEMENT_FIELDS)
    # The wizard's preset where it has a value (form and wizard agree), else the schema's.
    assert fields["max_length"].default == str(HYPERPARAMETER_PRESETS["sft"]["max_length"])
    assert fields["eval_split"].default == "0.1"
    assert fields["seed"].default == str(SFTHyperparameters().seed)
    assert h.hyperparameter_fields("no-such-strategy") == h.fallback_fields()


def test_hints_follow_the_strategy():
    hints = {s: {f.name: f.help for f in h.hyperparameter_fields(s)}
             for s in ("sft", "grpo", "dpo")}
    assert "LoRA SFT" in hints["sft"]["learning_rate"]
    assert "LoRA SFT" not in hints["grpo"]["learning_rate"] + hints["dpo"]["learning_rate"]
    assert "GRPO" not in hints["dpo"]["beta"] and "DPO" not in hints["grpo"]["beta"]
