"""What the warm process imports before it forks training, evaluation and export children
(worker/children.py): the libraries that take seconds to import, and nothing of TuneDeck's own
that could open a connection, start a thread or hold a file (a fork copies only the thread that
forks, and children must not share a connection)."""

import datasets  # noqa: F401
import peft  # noqa: F401
import torch  # noqa: F401
import transformers  # noqa: F401
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401
from trl import (  # noqa: F401  (TRL imports its trainers lazily: these are the slow part)
    DPOConfig,
    DPOTrainer,
    GRPOConfig,
    GRPOTrainer,
    SFTConfig,
    SFTTrainer,
)
