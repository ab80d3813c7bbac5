"""The README.md that ships in a downloaded adapter zip: which base model it adapts (its catalogue
name and Hub id, never the worker's local path), how it was trained (strategy, dataset,
hyperparameters, reward functions), how good it is (the ranking metric), and how to load it."""

from __future__ import annotations

import json
from typing import Any

from app.domain.catalogue import CATALOGUE
from app.domain.models import Checkpoint, Dataset, Run

STRATEGIES = {"sft": "SFT (supervised fine-tuning)", "grpo": "GRPO (reinforcement learning "
              "with reward functions)", "dpo": "DPO (preference optimisation)"}


def public_base_model(base_model: str) -> str:
    """What to load the base model by: a catalogue model's Hub id (or its catalogue name when it
    has none), a Hub id as given, a local folder by its name only."""
    entry = next((m for m in CATALOGUE if m.key == base_model), None)
    if entry is not None:
        return entry.hub_id or entry.key
    if base_model.startswith(("/", "~", ".")) or "\\" in base_model:
        return base_model.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return base_model


def adapter_readme(run: Run, checkpoint: Checkpoint, dataset: Dataset | None,
                   best: Checkpoint | None) -> str:
    entry = next((m for m in CATALOGUE if m.key == run.base_model), None)
    base = public_base_model(run.base_model)
    shown = f"{entry.display_name} (`{base}`)" if entry else f"`{base}`"
    lines = [
        "---",
        f"base_model: {json.dumps(base)}",
        "library_name: peft",
        f"tags: [lora, peft, tunedeck, {run.strategy}]",
        "---",
        "",
        f"# {run.name}: LoRA adapter, step {checkpoint.step}",
        "",
        f"Trained with TuneDeck (run #{run.id}).",
        "",
        "| | |",
        "|---|---|",
        f"| Base model | {shown} |",
        f"| Strategy | {STRATEGIES.get(run.strategy, run.strategy)} |",
        f"| Dataset | {_dataset_text(dataset)} |",
        f"| Checkpoint | step {checkpoint.step}"
        f"{f' of {run.max_steps}' if run.max_steps else ''} |",
        f"| Metric | {_metric_text(checkpoint, best)} |",
    ]
    if entry is not None and entry.hub_id is None:
        lines += ["", f"`{entry.key}` is built by TuneDeck itself (not on the Hugging Face "
                      "Hub): load this adapter on a TuneDeck worker's copy of it."]
    lines += ["", "## Hyperparameters", "", "| Setting | Value |", "|---|---|"]
    lines += [f"| `{key}` | {_value(value)} |"
              for key, value in sorted((run.hyperparameters or {}).items())]
    if run.reward_functions:
        lines += ["", "## Reward functions", "", "| Function | Weight |", "|---|---|"]
        lines += [f"| `{r.get('name')}` | {_value(r.get('weight'))} |"
                  for r in run.reward_functions]
    lines += [
        "", "## Load it", "",
        "Unzip this file into a folder, then:", "",
        "```python",
        "from peft import PeftModel",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "",
        'adapter = "path/to/this/folder"',
        f"base = AutoModelForCausalLM.from_pretrained({json.dumps(base)})",
        "tokenizer = AutoTokenizer.from_pretrained(adapter)",
        "model = PeftModel.from_pretrained(base, adapter)",
        "```",
        "",
        "`model.merge_and_unload()` folds the adapter into the base weights for serving.",
        "",
    ]
    return "\n".join(lines)


def _dataset_text(dataset: Dataset | None) -> str:
    if dataset is None:
        return "(deleted)"
    return f"{_cell(dataset.name)} (#{dataset.id}, {dataset.num_rows:,} rows, {dataset.format})"


def _metric_text(checkpoint: Checkpoint, best: Checkpoint | None) -> str:
    if checkpoint.metric_name is None or checkpoint.metric_value is None:
        return "not ranked (no metric measured at this step)"
    better = "higher" if checkpoint.metric_mode == "higher" else "lower"
    text = f"`{checkpoint.metric_name}` = {checkpoint.metric_value:.4g} ({better} is better)"
    if best is not None and best.id == checkpoint.id:
        return text + "; the run's best checkpoint"
    if best is not None:
        return text + f"; the run's best is step {best.step}"
    return text


def _value(value: Any) -> str:
    return _cell(json.dumps(value) if isinstance(value, (dict, list)) else str(value))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
