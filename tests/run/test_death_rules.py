"""The two rules that stop a run whose workers keep dying (``sweep.run.deaths``)."""

from sweep.run.deaths import Deaths


def _start(point: str) -> dict:
    return {"point": point, "values": {"training.learning_rate": 0.1}, "trial": 0,
            "resumed_from": None}


def test_three_early_deaths_of_one_point_say_nothing_trained():
    # Two workers, the second slow to start: the replacements of the first claim the same
    # point each time. Both rules hold at the third death; the early one is said (a run
    # whose workers never finish an epoch is broken, not one point).
    deaths = Deaths()
    assert deaths.died(False, [_start("p1")]) is None
    assert deaths.died(False, [_start("p1")]) is None
    assert deaths.died(False, [_start("p1")]) == (
        "3 workers in a row exited before finishing an epoch")


def test_a_point_dying_after_progress_three_times_is_named():
    deaths = Deaths()
    assert deaths.died(True, [_start("p1")]) is None
    assert deaths.died(False, [_start("p2")]) is None
    assert deaths.died(True, [_start("p1")]) is None
    reason = deaths.died(True, [_start("p1")])
    assert reason is not None and reason.startswith(
        "the point learning_rate=0.1 (trial 0) died 3 times in this run")
