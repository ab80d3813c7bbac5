"""The strategy wizard's decision tree: which fine-tuning strategy fits the user's data.

labelled? -- no --> verifiable? -- no --> DPO (human preference pairs)
    |                    `-- yes --> GRPO (reinforcement fine-tuning on automatic rewards)
    `-- yes --> num_examples >= large_threshold? -- yes --> SFT
                        `-- no --> reasoning helps? -- yes --> GRPO, no --> SFT
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

from app.domain.errors import Invalid

Strategy = Literal["sft", "grpo", "dpo"]


@dataclass
class StrategyAnswers:
    labelled: bool | None
    verifiable: bool | None = None
    num_examples: int | None = None
    reasoning_helps: bool | None = None


@dataclass(frozen=True)
class Question:
    id: str
    """Also the StrategyAnswers field it fills."""
    text: str
    help: str
    kind: Literal["yes_no", "count"] = "yes_no"


QUESTIONS: list[Question] = [
    Question(
        "labelled",
        "Do you have labelled examples: prompts with the correct (ground-truth) answer?",
        "Labelled means each prompt comes with the answer or completion you want, e.g. a "
        "question with its final number, or a ticket with its ideal reply.",
    ),
    Question(
        "verifiable",
        "Can a program check whether an answer is correct, without a person?",
        "Verifiable tasks have an automatic check: valid JSON, code that passes tests, a "
        "number that matches, a required format. Tone or helpfulness usually need a person.",
    ),
    Question(
        "num_examples",
        "How many labelled examples do you have?",
        "TuneDeck calls 1000 or more 'large' by default (TUNEDECK_LARGE_DATASET_THRESHOLD). "
        "That is a rule of thumb, not a measured boundary: OpenAI's fine-tuning guide reports "
        "gains from 50-100 good examples, and LIMA (Zhou et al., 2023) tuned a model on 1,000 "
        "curated ones. With fewer, SFT is more likely to memorise than to generalise.",
        kind="count",
    ),
    Question(
        "reasoning_helps",
        "Does the task get better when the model reasons step by step (chain of thought)?",
        "Maths, logic and multi-step extraction usually do; classification or rewriting a "
        "sentence usually do not. GRPO rewards correct final answers and lets the model find "
        "its own reasoning, so it needs the answers only, not worked solutions.",
    ),
]

_TEXT = {q.id: q.text for q in QUESTIONS}


class MissingAnswer(Invalid):
    """The tree reached a question that has no answer yet; ``field`` names it."""

    def __init__(self, field: str, message: str, path: list[PathStep] | None = None):
        super().__init__(message)
        self.field = field
        self.path = path or []
        """The steps answered before the missing one (the wizard highlights them)."""


@dataclass(frozen=True)
class PathStep:
    question_id: str
    question: str
    answer_label: str


@dataclass(frozen=True)
class DataFormat:
    description: str
    example: dict[str, Any]
    """One JSON row of the dataset the strategy needs."""


@dataclass(frozen=True)
class Recommendation:
    strategy: Strategy
    path: list[PathStep]
    leaf: str
    """One of LEAVES: rlhf_dpo, rft_grpo_unlabelled, sft_large, rft_grpo_reasoning, sft_tiny."""
    explanation: str
    data_format: DataFormat
    caveats: list[str] = field(default_factory=list)


_SFT_FORMAT = DataFormat(
    "Prompt-completion pairs: the prompt and the exact completion the model should learn.",
    {"prompt": "Classify the ticket: 'My card was charged twice.'", "completion": "billing"},
)
_GRPO_LABELLED_FORMAT = DataFormat(
    "Prompts with a short ground-truth answer column that reward functions compare against; "
    "no worked solutions needed.",
    {"prompt": "A pen costs 3 dollars. How much do 7 pens cost?", "answer": "21"},
)
_GRPO_UNLABELLED_FORMAT = DataFormat(
    "Prompts only; reward functions check each generated answer (format, validity, tests).",
    {"prompt": "Return the person as JSON with keys name and age: 'Ana is 31.'"},
)
_DPO_FORMAT = DataFormat(
    "Preference pairs: for each prompt, a chosen (better) and a rejected (worse) response.",
    {
        "prompt": "Reply to: 'Where is my order?'",
        "chosen": "Sorry for the wait! ...",
        "rejected": "Check the website.",
    },
)

_GRPO_CAVEATS = [
    "GRPO samples several generations per prompt (num_generations), so each step costs "
    "several times an SFT step.",
    "Rewards must separate good from bad generations of the same prompt; if every generation "
    "gets the same reward, GRPO learns nothing.",
]

# leaf id -> (strategy, explanation, data format, caveats)
LEAVES: dict[str, tuple[Strategy, str, DataFormat, list[str]]] = {
    "rlhf_dpo": (
        "dpo",
        "Without labels or an automatic check, what is 'better' has to come from people. "
        "RLHF learns from human preferences; TuneDeck offers DPO, which trains directly on "
        "pairs of a preferred and a rejected response, without a separate reward model.",
        _DPO_FORMAT,
        [
            "DPO needs chosen/rejected pairs: someone has to rank two responses per prompt.",
            "Pairs where both responses are poor teach little; the chosen one should be good.",
        ],
    ),
    "rft_grpo_unlabelled": (
        "grpo",
        "No labels are needed when a program can score answers. Reinforcement fine-tuning "
        "(GRPO) generates several answers per prompt and moves the model toward the ones the "
        "reward functions score higher.",
        _GRPO_UNLABELLED_FORMAT,
        [
            *_GRPO_CAVEATS,
            "The model learns whatever the rewards pay for: a loose check gets gamed.",
        ],
    ),
    "sft_large": (
        "sft",
        "With many labelled examples, supervised fine-tuning is the simplest and cheapest "
        "choice: the model imitates the completions directly, one pass per example. At this "
        "size it tends to generalise rather than memorise, and it needs no reward functions.",
        _SFT_FORMAT,
        ["SFT copies the style and mistakes of its examples: check a sample before training."],
    ),
    "rft_grpo_reasoning": (
        "grpo",
        "With few labelled examples on a task where reasoning helps, SFT would need worked "
        "solutions and tends to memorise them. GRPO only needs the final answer to reward, "
        "and lets the model discover reasoning that reaches it.",
        _GRPO_LABELLED_FORMAT,
        [
            *_GRPO_CAVEATS,
            "GRPO needs a verifiable answer column: short, exact answers a reward can check.",
        ],
    ),
    "sft_tiny": (
        "sft",
        "Reasoning does not help here, so GRPO would have little to discover beyond what the "
        "labels already show. Imitating the labelled completions (SFT) is the direct and "
        "cheapest route, even with few examples.",
        _SFT_FORMAT,
        [
            "SFT tends to memorise tiny datasets: keep max_steps low, hold out an eval split "
            "and watch for eval_loss rising.",
            "More examples help most here; even a few hundred more make a difference.",
        ],
    ),
}


def _walk(answers: StrategyAnswers, large_threshold: int) -> tuple[list[PathStep], str]:
    """The path and leaf for the answers; raises MissingAnswer at the first unanswered node."""
    if large_threshold < 1:
        raise ValueError(f"large_threshold must be at least 1, got {large_threshold}")
    if answers.num_examples is not None and answers.num_examples < 0:
        raise ValueError(f"num_examples cannot be negative, got {answers.num_examples}")

    def step(qid: str, label: str) -> PathStep:
        return PathStep(qid, _TEXT[qid], label)

    def yes_no(value: bool) -> str:
        return "Yes" if value else "No"

    if answers.labelled is None:
        raise MissingAnswer(
            "labelled",
            "the tree needs 'labelled' first: do you have labelled (ground-truth) examples?",
        )
    path = [step("labelled", yes_no(answers.labelled))]
    if not answers.labelled:
        if answers.verifiable is None:
            raise MissingAnswer(
                "verifiable",
                "the tree needs 'verifiable' when labelled is false: "
                "can correctness be checked automatically?",
                path=path,
            )
        path.append(step("verifiable", yes_no(answers.verifiable)))
        return path, "rft_grpo_unlabelled" if answers.verifiable else "rlhf_dpo"

    n = answers.num_examples
    if n is None:
        raise MissingAnswer(
            "num_examples",
            "the tree needs 'num_examples' when labelled is true: "
            "how many labelled examples are there?",
            path=path,
        )
    large = n >= large_threshold
    path.append(step("num_examples", f"{n:,} ({'>=' if large else '<'} {large_threshold:,})"))
    if large:
        return path, "sft_large"
    if answers.reasoning_helps is None:
        raise MissingAnswer(
            "reasoning_helps",
            f"the tree needs 'reasoning_helps' when there are fewer than {large_threshold:,} "
            "labelled examples: does reasoning (chain of thought) help?",
            path=path,
        )
    path.append(step("reasoning_helps", yes_no(answers.reasoning_helps)))
    return path, "rft_grpo_reasoning" if answers.reasoning_helps else "sft_tiny"


def recommend(answers: StrategyAnswers, *, large_threshold: int) -> Recommendation:
    """The strategy for complete answers; MissingAnswer if the tree needs one more."""
    path, leaf = _walk(answers, large_threshold)
    strategy, explanation, data_format, caveats = LEAVES[leaf]
    # Copies: the leaf table is shared by every request.
    return Recommendation(
        strategy=strategy,
        path=path,
        leaf=leaf,
        explanation=explanation,
        data_format=copy.deepcopy(data_format),
        caveats=list(caveats),
    )


def next_question(answers: StrategyAnswers, *, large_threshold: int) -> str | None:
    """Id of the next question the tree needs, or None once a leaf is reached.

    Needs the threshold too: whether 'reasoning_helps' is asked depends on it.
    """
    try:
        _walk(answers, large_threshold)
    except MissingAnswer as missing:
        return missing.field
    return None


# Small LoRA runs, close to Unsloth's notebooks (warmup_steps=5 of 60 there); keys are fields of
# app.domain.hyperparameters's hyperparameter schemas, so a preset launches as it is.
_COMMON = dict(
    lora_r=16, lora_alpha=32, lora_dropout=0.0, max_steps=60, warmup_ratio=0.1, logging_steps=1
)
HYPERPARAMETER_PRESETS: dict[str, dict[str, Any]] = {
    "sft": {
        **_COMMON,
        "learning_rate": 2e-4,
        "per_device_train_batch_size": 4,
        "gradient_accumulation_steps": 1,
        "max_length": 1024,
        "weight_decay": 0.01,
        # A small held-out split: an eval curve, a ranked best checkpoint, an automatic
        # evaluation once the run completes (GRPO's evaluation samples, so it stays opt-in).
        "eval_split": 0.1,
    },
    # TRL needs the generation batch (batch size x accumulation) divisible by num_generations.
    "grpo": {
        **_COMMON,
        "learning_rate": 5e-6,
        "per_device_train_batch_size": 4,
        "gradient_accumulation_steps": 1,
        "num_generations": 4,
        "max_completion_length": 128,
        "beta": 0.04,
        "temperature": 0.9,
    },
    "dpo": {
        **_COMMON,
        "learning_rate": 5e-6,
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 4,
        "beta": 0.1,
        "max_length": 1024,
        "eval_split": 0.1,
    },
}


def preset(strategy: str) -> dict[str, Any]:
    """A copy of the strategy's preset, safe to edit."""
    return copy.deepcopy(HYPERPARAMETER_PRESETS[strategy])


# answer type -> [(reward name, weight)]; exact_answer carries the signal, the rest give
# partial credit so GRPO sees reward differences before the first fully correct answer.
_REWARDS: dict[str, list[tuple[str, float]]] = {
    "number": [("exact_answer", 1.0), ("numeric_match", 0.5), ("soft_format", 0.25)],
    "text": [("exact_answer", 1.0), ("soft_format", 0.25)],
    "json": [("json_valid", 1.0)],
    "free": [("length_target", 1.0), ("soft_format", 0.25)],
}
ANSWER_TYPES = tuple(_REWARDS)


def suggest_rewards(answer_type: str) -> list[dict[str, Any]]:
    """Starter reward functions for an answer type: [{"name", "weight", "params"}]."""
    if answer_type not in _REWARDS:
        raise ValueError(f"unknown answer type {answer_type!r}; expected one of {ANSWER_TYPES}")
    return [{"name": name, "weight": w, "params": {}} for name, w in _REWARDS[answer_type]]
