"""The ETA's and the run page's seconds per step leave out the first slow steps and pauses."""

from __future__ import annotations

import pytest

from app.domain.progress import seconds_per_step


def test_first_slow_steps_do_not_set_the_rate():
    # Steps 1-3 take 60 s each (first generations, warm-up), then 5 s each: 60 steps ≈ 7 min.
    marks, t = [(1, 0.0)], 0.0
    for step in range(2, 21):
        t += 60.0 if step <= 3 else 5.0
        marks.append((step, t))
    rate = seconds_per_step(marks)
    assert rate == pytest.approx(5.0)
    # What the old rule (time so far / steps so far) said: more than twice the real rate.
    assert marks[-1][1] / (marks[-1][0] - 1) > 2 * rate


def test_early_and_empty():
    assert seconds_per_step([]) is None
    assert seconds_per_step([(1, 0.0)]) is None
    assert seconds_per_step([(1, 0.0), (2, 30.0)]) == 30.0  # one interval: all there is
    assert seconds_per_step([(1, 0.0), (2, 30.0), (3, 32.0)]) == 2.0  # the first one left out


def test_an_interval_across_a_resume_is_a_pause_not_a_step():
    marks = [(s, 2.0 * s) for s in range(1, 11)] + [(s, 600.0 + 2.0 * s) for s in range(11, 16)]
    assert seconds_per_step(marks, resumed_at=[10]) == pytest.approx(2.0)
    assert seconds_per_step(marks[:12]) == pytest.approx(2.0)  # median: one pause moves it little
