"""The decision tree as a drawing: boxes and arrows for an SVG, with the answered path marked.

Geometry lives here (not in the template) so that the page stays a loop over shapes, and so that
which arrows light up is decided by the same tree walk that makes the recommendation.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.services.wizard.decision_tree import (
    LEAVES,
    MissingAnswer,
    PathStep,
    StrategyAnswers,
    recommend,
)

WIDTH, HEIGHT = 960, 440
QUESTION_SIZE = (200, 48)
LEAF_SIZE = (176, 58)


@dataclass(frozen=True)
class Node:
    id: str
    x: int  # centre
    y: int  # top
    title: str
    subtitle: str = ""
    kind: str = "question"  # or "leaf"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    branch: str  # "yes", "no", "large" or "small"
    label: str


def nodes(large_threshold: int) -> list[Node]:
    leaf_titles = {
        "rlhf_dpo": ("DPO", "RLHF on preference pairs"),
        "rft_grpo_unlabelled": ("GRPO", "RFT on automatic rewards"),
        "sft_large": ("SFT", "imitate the labels"),
        "rft_grpo_reasoning": ("GRPO", "RFT: reward the answer"),
        "sft_tiny": ("SFT", "imitate; watch eval loss"),
    }
    positions = {
        "rlhf_dpo": (100, 300), "rft_grpo_unlabelled": (310, 300), "sft_large": (530, 300),
        "rft_grpo_reasoning": (660, 376), "sft_tiny": (870, 376),
    }
    assert set(leaf_titles) == set(LEAVES)  # a new leaf must be drawn too
    return [
        Node("labelled", 480, 16, "Labelled data?", "ground-truth answers"),
        Node("verifiable", 205, 150, "Verifiable?", "a program can check it"),
        Node("num_examples", 660, 150, f"≥ {large_threshold:,} examples?",
             "how much labelled data"),
        Node("reasoning_helps", 780, 250, "Reasoning helps?", "chain of thought"),
        *(Node(leaf, *positions[leaf], *leaf_titles[leaf], kind="leaf") for leaf in LEAVES),
    ]


EDGES = [
    Edge("labelled", "verifiable", "no", "No"),
    Edge("labelled", "num_examples", "yes", "Yes"),
    Edge("verifiable", "rlhf_dpo", "no", "No"),
    Edge("verifiable", "rft_grpo_unlabelled", "yes", "Yes"),
    Edge("num_examples", "sft_large", "large", "Large"),
    Edge("num_examples", "reasoning_helps", "small", "Tiny"),
    Edge("reasoning_helps", "rft_grpo_reasoning", "yes", "Yes"),
    Edge("reasoning_helps", "sft_tiny", "no", "No"),
]


def _branch(step: PathStep, answers: StrategyAnswers, large_threshold: int) -> str:
    value = getattr(answers, step.question_id)
    if step.question_id == "num_examples":
        return "large" if value >= large_threshold else "small"
    return "yes" if value else "no"


def flowchart(answers: StrategyAnswers, *, large_threshold: int) -> dict:
    """Shapes for the SVG: nodes with box geometry, edges as elbow paths, ``taken`` flags set
    along the answered path, ``current`` on the question being asked, ``chosen`` on the leaf."""
    try:
        recommendation = recommend(answers, large_threshold=large_threshold)
        path, leaf, current = recommendation.path, recommendation.leaf, None
    except MissingAnswer as missing:
        path, leaf, current = missing.path, None, missing.field
    taken_edges = {(s.question_id, _branch(s, answers, large_threshold)) for s in path}
    taken_nodes = {s.question_id for s in path} | {leaf, current} - {None}
    by_id = {n.id: n for n in nodes(large_threshold)}

    def box(node: Node) -> dict:
        width, height = LEAF_SIZE if node.kind == "leaf" else QUESTION_SIZE
        return {"id": node.id, "kind": node.kind, "title": node.title, "subtitle": node.subtitle,
                "x": node.x - width // 2, "y": node.y, "width": width, "height": height,
                "cx": node.x, "taken": node.id in taken_nodes, "current": node.id == current,
                "chosen": node.id == leaf}

    boxes = {node_id: box(node) for node_id, node in by_id.items()}
    edges = []
    for edge in EDGES:
        source, target = boxes[edge.source], boxes[edge.target]
        x1, y1 = source["cx"], source["y"] + source["height"]
        x2, y2 = target["cx"], target["y"]
        middle = y1 + 18
        edges.append({
            "id": f"{edge.source}-{edge.branch}", "label": edge.label,
            "d": f"M{x1},{y1} V{middle} H{x2} V{y2 - 2}",
            "label_x": (x1 + x2) / 2, "label_y": middle - 5,
            "taken": (edge.source, edge.branch) in taken_edges,
        })
    return {"width": WIDTH, "height": HEIGHT, "nodes": list(boxes.values()), "edges": edges,
            "leaf": leaf, "current": current}
