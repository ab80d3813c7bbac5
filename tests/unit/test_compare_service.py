import pytest

from app.services.compare.comparison import CompareError, parse_names, parse_run_ids, summarize
from app.services.compare.samples import nearest_step, side_by_side

NAN = float("nan")


@pytest.mark.parametrize(("text", "expected"), [
    ("1,2", [1, 2]), (" 3 , 1,3 ", [3, 1]), ("7,", [7]), ("42", [42]),
])
def test_parse_run_ids_keeps_order_and_drops_repeats(text, expected):
    assert parse_run_ids(text) == expected


@pytest.mark.parametrize("text", [None, "", ",", "1,,2", "a", "1;2", "-1", "1.5", "1 2",
                                  "1234567890"])
def test_parse_run_ids_rejects_malformed_lists(text):
    with pytest.raises(CompareError, match="separated by commas"):
        parse_run_ids(text)


def test_parse_run_ids_caps_the_count():
    assert len(parse_run_ids(",".join(map(str, range(20))))) == 20
    with pytest.raises(CompareError, match=r"at most 20 runs at a time \(got 21\)"):
        parse_run_ids(",".join(map(str, range(21))))
    with pytest.raises(CompareError, match="at most 2 runs"):
        parse_run_ids("1,2,3", limit=2)


def test_parse_names():
    assert parse_names(None) is None
    assert parse_names(" , ") is None
    assert parse_names("loss, rewards/exact/mean,loss") == ["loss", "rewards/exact/mean"]


def test_summarize_final_and_best_by_direction():
    summary = summarize({
        "loss": [(1, 3.0), (2, 1.0), (3, NAN), (4, 1.0), (5, 2.0)],
        "reward": [(1, 0.1), (2, 0.9), (3, 0.5)],
        "grad_norm": [(1, 1.0)],  # not a key metric
        "eval_loss": [(1, NAN)],  # nothing finite: left out
    })
    # Ties go to the later step; NaN is neither final nor best.
    assert summary["loss"] == {"final": [5, 2.0], "best": [4, 1.0], "mode": "lower"}
    assert summary["reward"] == {"final": [3, 0.5], "best": [2, 0.9], "mode": "higher"}
    assert set(summary) == {"loss", "reward"}


def test_nearest_step():
    assert nearest_step([], 5) is None
    assert nearest_step([10, 20], 14) == 10
    assert nearest_step([10, 20], 15) == 20  # tie: the later step
    assert nearest_step([10, 20], 99) == 20
    assert nearest_step([10, 20], 0) == 10


def test_side_by_side_groups_by_prompt_shared_prompts_first():
    rows = {
        1: [{"prompt": "only-1", "completion": "x", "rewards": {}},
            {"prompt": "both", "completion": "a1", "rewards": {"r": 1}},
            {"prompt": "both", "completion": "a2", "rewards": {"r": 0}}],
        2: [{"prompt": "both", "completion": "b1", "rewards": {"r": 0.5}}],
    }
    groups = side_by_side(rows, per_prompt=1)
    assert [g["prompt"] for g in groups] == ["both", "only-1"]
    assert groups[0]["runs"] == {"1": [{"completion": "a1", "rewards": {"r": 1}}],
                                 "2": [{"completion": "b1", "rewards": {"r": 0.5}}]}
    assert groups[1]["runs"] == {"1": [{"completion": "x", "rewards": {}}]}
