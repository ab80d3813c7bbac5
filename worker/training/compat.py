"""TRL config arguments that work on both TRL/transformers versions TuneDeck runs with.

CPU installs take the newest TRL (1.16, transformers 5.24); the GPU extra pins what Unsloth
2026.10 supports (TRL <= 1.15, transformers <= 5.17). The run's arguments are written for the
newest names and adapted here to the fields the installed config class really has.
"""

from __future__ import annotations

import dataclasses
from typing import Any

# Newest name -> older name of the same setting (transformers 5.24 renamed these; TRL 1.15's
# configs, on transformers 5.17, know only the older names: tests/fixtures/trl_1_15_fields.json).
RENAMED = {
    "activation_checkpointing": "gradient_checkpointing",
    "activation_checkpointing_kwargs": "gradient_checkpointing_kwargs",
}


def adapt_arguments(arguments: dict[str, Any], fields: set[str] | frozenset[str]) -> dict[str, Any]:
    """``arguments`` for a config class with ``fields``; raises TypeError for a setting it lacks.

    Renamed settings take their older name; an unset (None) setting the class lacks is dropped,
    since leaving it out means the same thing. A setting with a value is never dropped silently.
    """
    adapted: dict[str, Any] = {}
    for name, value in arguments.items():
        if name not in fields and RENAMED.get(name) in fields:
            name = RENAMED[name]
        if name in fields:
            adapted[name] = value
        elif value is not None:
            raise TypeError(
                f"this TRL version's config has no {name!r} setting (value {value!r}): "
                "install a TRL version TuneDeck supports"
            )
    return adapted


def build_config(config_class: type, arguments: dict[str, Any]):  # type: ignore[no-untyped-def]
    """A TRL config (SFTConfig, GRPOConfig, DPOConfig) built from ``arguments``."""
    fields = frozenset(field.name for field in dataclasses.fields(config_class))
    return config_class(**adapt_arguments(arguments, fields))
