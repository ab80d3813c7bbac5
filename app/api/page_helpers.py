"""Pure helpers for the HTML pages: Jinja filters and the new-run form's fields. No I/O.

The worker's catalogue and hyperparameter schemas are imported lazily: they import no torch, but
the pages must still render (with plain text inputs) if they cannot be imported.
"""

from __future__ import annotations

import math
import re
import types
import typing
from dataclasses import dataclass, replace
from typing import Any

from markupsafe import Markup, escape

from app.domain.catalogue import CATALOGUE
from app.domain.dataset_rules import FORMAT_LABELS
from app.domain.hyperparameters import HYPERPARAMETER_SCHEMAS
from app.domain.rewards import REWARD_FUNCTIONS
from app.services.wizard.decision_tree import HYPERPARAMETER_PRESETS

# Strategies this form can launch without extra inputs. GRPO needs a reward-function section
# and is added here together with it; each strategy gets its own fieldset in runs/new.html.
FORM_STRATEGIES = {
    "sft": ("Supervised fine-tuning (SFT)",
            "Teach the model to reproduce the completions in your dataset."),
    "grpo": ("Reinforcement fine-tuning (GRPO)",
             "Sample answers to your prompts and learn from reward functions; no completions "
             "needed."),
    "dpo": ("Preference tuning (DPO)",
            "Prefer the chosen over the rejected reply in prompt/chosen/rejected pairs."),
}
# Shown outside "Advanced": what people change most often.
PRIMARY_FIELDS = ("max_steps", "learning_rate", "beta", "loss_type", "num_generations",
                  "max_completion_length", "temperature", "sample_every_steps")
# Inputs a strategy renders itself (runs/strategy_<key>.html), left out of the generic fields.
OWN_FIELDS = {"grpo": ("system_prompt", "reasoning_tag", "answer_tag")}
# Where a run trains, shown once under "Where it runs" (templates/partials/placement.html).
PLACEMENT_FIELDS = ("num_processes", "num_hosts", "distributed")
# The order of the Advanced section; other schema fields follow in schema order.
FIELD_ORDER = (
    "max_steps", "learning_rate", "lora_r", "lora_alpha", "lora_dropout",
    "per_device_train_batch_size", "gradient_accumulation_steps", "max_length", "eval_split",
    "eval_steps", "save_steps", "seed",
)
LABELS = {
    "max_steps": ("Max steps", "Optimizer steps to train; -1 trains for num_train_epochs."),
    "learning_rate": ("Learning rate", "2e-4 is a good start for LoRA."),
    "lora_r": ("LoRA rank (r)", "Adapter capacity: 8–64 is typical."),
    "lora_alpha": ("LoRA alpha", "Scaling of the adapter; often 2 × r."),
    "lora_dropout": ("LoRA dropout", "0–0.1."),
    "per_device_train_batch_size": ("Batch size", "Examples per step on each device."),
    "gradient_accumulation_steps": ("Gradient accumulation", "Effective batch = batch × this."),
    "max_length": ("Max length (tokens)", "Longer examples are truncated."),
    "eval_split": ("Eval split", "Fraction held out for evaluation; 0 = no eval loss."),
    "eval_steps": ("Eval every N steps", "Empty: at every checkpoint."),
    "save_steps": ("Checkpoint every N steps", "Each checkpoint is a downloadable adapter."),
    "seed": ("Seed", "Same seed, same data order and initial adapter."),
    "lora_target_modules": ("LoRA target modules",
                            "all-linear, or module names separated by commas."),
    "num_train_epochs": ("Epochs", "Used when max steps is -1."),
    "logging_steps": ("Log every N steps", ""),
    "warmup_ratio": ("Warmup ratio", "Fraction of steps warming the learning rate up."),
    "lr_scheduler_type": ("Learning rate schedule", ""),
    "weight_decay": ("Weight decay", ""),
    "system_prompt": ("System prompt", "Prepended to every example."),
    "chat_template": ("Chat template",
                      "Text prompts as chat messages: auto when the model has a template."),
    "load_in_4bit": ("Load in 4-bit", "QLoRA: needs the unsloth backend on a CUDA GPU."),
    "beta": ("Beta", "How strongly training stays near the base model."),
    "loss_type": ("Loss type", "The default (DPO: sigmoid, GRPO: dapo) suits most runs."),
    "max_prompt_length": ("Max prompt length (tokens)",
                          "Rows with longer prompts are dropped; empty keeps every row."),
    "num_generations": ("Generations per prompt",
                        "Completions sampled per prompt; batch × accumulation must hold whole "
                        "groups."),
    "max_completion_length": ("Max completion (tokens)", "Longer completions are cut off."),
    "temperature": ("Temperature", "Sampling temperature: higher explores more."),
    "top_p": ("Top-p", "Nucleus sampling; 1 samples from the whole distribution."),
    "sample_every_steps": ("Store samples every N steps",
                           "Prompts, completions and rewards shown on the run page."),
    "steps_per_generation": ("Steps per generation", "Empty: gradient accumulation steps."),
    "generation_batch_size": ("Generation batch size", "Empty: batch × steps per generation."),
}


# Hints that differ by strategy, over LABELS: the LoRA-SFT advice is wrong for GRPO and DPO.
STRATEGY_HINTS: dict[tuple[str, str], str] = {
    ("sft", "learning_rate"): "2e-4 is a good start for LoRA SFT.",
    ("grpo", "learning_rate"): "Reinforcement learning needs small steps: 5e-6 to 1e-5.",
    ("dpo", "learning_rate"): "5e-6 is a good start for DPO; higher drifts from the base model.",
    ("grpo", "beta"): "KL penalty keeping the model near the base one: 0.04; 0 turns it off.",
    ("dpo", "beta"): "How strongly training stays near the base model: 0.1 is typical.",
    ("grpo", "loss_type"): "The default (dapo) suits most runs.",
    ("dpo", "loss_type"): "The default (sigmoid) is the DPO paper's loss.",
    ("grpo", "eval_split"): "Fraction of prompts held out; evaluating samples completions, "
                            "so it costs generation time. 0 = no eval reward.",
    ("sft", "max_length"): "Longer examples are truncated; at most the model's context length.",
    ("dpo", "max_length"): "Prompt + reply are truncated there; at most the model's context "
                           "length.",
}


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    help: str
    kind: str  # "int", "float", "choice", "text", "modules"
    default: str  # as the input shows it; "" = let the server decide
    optional: bool
    choices: tuple[str, ...] = ()


def _field_kind(annotation: Any) -> tuple[str, bool, tuple[str, ...]]:
    """(kind, optional, choices) for a pydantic field annotation."""
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    optional = False
    if origin in (typing.Union, types.UnionType):
        optional = type(None) in args
        rest = [a for a in args if a is not type(None)]
        if any(typing.get_origin(a) is list for a in rest):
            return "modules", optional, ()
        annotation = rest[0] if len(rest) == 1 else str
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return "choice", optional, tuple(str(a) for a in args)
    if annotation is bool:
        return "choice", optional, ("true", "false")
    if annotation is int:
        return "int", optional, ()
    if annotation is float:
        return "float", optional, ()
    return "text", optional, ()


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def fields_for_schema(schema: Any) -> list[FormField]:
    """Form fields of a pydantic model, in FIELD_ORDER then schema order."""
    names = list(schema.model_fields)
    ordered = [n for n in FIELD_ORDER if n in names] + [n for n in names if n not in FIELD_ORDER]
    fields = []
    for name in ordered:
        info = schema.model_fields[name]
        kind, optional, choices = _field_kind(info.annotation)
        label, help_text = LABELS.get(name, (name.replace("_", " ").capitalize(), ""))
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        fields.append(FormField(name=name, label=label, help=help_text or info.description or "",
                                kind=kind, default=_show(default), optional=optional,
                                choices=choices))
    return fields


def fallback_fields() -> list[FormField]:
    """Without the schema: the usual fields, empty, so the server's defaults apply."""
    kinds = {"learning_rate": "float", "lora_dropout": "float", "eval_split": "float"}
    return [FormField(name=n, label=LABELS[n][0], help=LABELS[n][1], kind=kinds.get(n, "int"),
                      default="", optional=True) for n in FIELD_ORDER]


def hyperparameter_fields(strategy: str) -> list[FormField]:
    """The strategy's form fields: the wizard's preset as defaults (so the two agree), hints
    for this strategy."""
    schema = HYPERPARAMETER_SCHEMAS.get(strategy)
    fields = fields_for_schema(schema) if schema is not None else fallback_fields()
    defaults = HYPERPARAMETER_PRESETS.get(strategy, {})
    return [
        replace(f, default=_show(defaults[f.name]) if f.name in defaults else f.default,
                help=STRATEGY_HINTS.get((strategy, f.name), f.help))
        for f in fields
        if f.name not in OWN_FIELDS.get(strategy, ()) and f.name not in PLACEMENT_FIELDS
    ]


def reward_descriptions() -> dict[str, str]:
    """Built-in GRPO reward names → one-line descriptions."""
    return {name: spec.description for name, spec in REWARD_FUNCTIONS.items()}


def catalogue() -> list[Any]:
    """Catalogue models (.key, .display_name, .description)."""
    return list(CATALOGUE)


def model_label(key: str, models: list[Any]) -> str:
    for model in models:
        if model.key == key:
            return model.display_name
    return key


def format_label(format: str | None) -> str:
    if not format:
        return "unknown"
    label = FORMAT_LABELS.get(format, format.replace("_", " "))
    return label[:1].upper() + label[1:]


def human_duration(seconds: float | None) -> str:
    """'45 s', '2 min 10 s', '1 h 5 min', '2 d 3 h'; '' when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return ""
    total = int(round(seconds))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def human_bytes(size: int | None) -> str:
    if size is None:
        return ""
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def number(value: Any) -> str:
    """Integers with thousands separators, floats with 4 significant digits, the rest as is."""
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:.4g}"
    return str(value)


def short_metric(name: str | None) -> str:
    """'loss (moving average of 5)' → 'loss (avg)': fits a table cell; the title keeps it all."""
    return re.sub(r"\s*\(moving average of \d+\)", " (avg)", name or "")


SUMMARY_KEYS = ("min", "mean", "median", "p95", "max")


def token_summary(stats: Any) -> tuple[Any, Any] | None:
    """(mean, p95) tokens per row (the ``total`` field when present), or None if absent."""
    fields = stats.get("fields") if isinstance(stats, dict) else None
    if not isinstance(fields, dict) or not fields:
        return None
    chosen = fields.get("total") or next(iter(fields.values()))
    tokens = chosen.get("tokens") if isinstance(chosen, dict) else None
    if not isinstance(tokens, dict) or "mean" not in tokens:
        return None
    return tokens.get("mean"), tokens.get("p95")


def stats_rows(stats: Any) -> list[tuple[str, str, list[Any]]]:
    """(field, unit, [min, mean, median, p95, max]) rows for whatever length stats were stored."""
    fields = stats.get("fields") if isinstance(stats, dict) else None
    if not isinstance(fields, dict):
        return []
    rows = []
    for field, units in fields.items():
        if not isinstance(units, dict):
            continue
        for unit, summary in units.items():
            if isinstance(summary, dict):
                rows.append((field, unit, [summary.get(k) for k in SUMMARY_KEYS]))
    return rows


def inline_code(text: str | None) -> Markup:
    """Escaped text with Markdown `code` (and any RST ``code`` left) as <code> elements."""
    parts = re.split(r"``(.+?)``|`([^`]+)`", text or "")
    html = []
    for i in range(0, len(parts), 3):
        html.append(str(escape(parts[i])))
        if i + 1 < len(parts):
            code = parts[i + 1] if parts[i + 1] is not None else parts[i + 2]
            html.append(f"<code>{escape(code)}</code>")
    return Markup("".join(html))
