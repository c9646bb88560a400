"""Successive halving over claims (issue 38): rungs, asynchronous promotions of the best
``1/factor`` of each rung, each promotion claimed once."""

from __future__ import annotations

import threading

import pytest

from sweep.store import claims, halving, open_storage
from sweep.store.halving import Ladder
from sweep.study.schedule import Halving

POINTS = [f"p{i}" for i in range(9)]
LADDER = Ladder(rungs=(1, 3, 9), factor=3, minimize=False)


@pytest.mark.parametrize(("halving", "epochs", "rungs"), [
    (Halving(1, 3), 9, (1, 3, 9)),  # the 27-point example: 63 of 243 epochs
    (Halving(1, 3), 10, (1, 3, 9, 10)),
    (Halving(2, 2), 9, (2, 4, 8, 9)),
    (Halving(3, 3), 4, (3, 4)),
])
def test_the_rungs_multiply_up_to_the_studys_epochs(halving, epochs, rungs):
    assert halving.rungs(epochs) == rungs


def _rest(engine, claim: claims.Claim, score: float) -> None:
    claims.update(engine, 1, claim.point, "w", trial_number=POINTS.index(claim.point))
    halving.rest(engine, 1, claim.point, "w", claim.epochs, score)


def test_a_rungs_best_third_is_promoted_once_sure_while_new_points_start(db_url):
    engine = open_storage(db_url).engine
    firsts = [claims.claim_next(engine, 1, POINTS, "w", LADDER) for _ in range(3)]
    assert [(c.point, c.epochs, c.earlier_trial) for c in firsts] == [
        ("p0", 1, None), ("p1", 1, None), ("p2", 1, None)]
    for claim, score in zip(firsts, (0.5, 0.9, 0.7), strict=True):
        _rest(engine, claim, score)
    # 3 of 9 finished rung 1: the 6 to come may all beat p1's 0.9; a new point starts (no
    # barrier: nobody waits for the rung to fill)
    assert claims.claim_next(engine, 1, POINTS, "w", LADDER).point == "p3"
    rest = [claims.claim_next(engine, 1, POINTS, "w", LADDER) for _ in range(5)]
    for claim, score in zip(rest, (0.1, 0.2, 0.95, 0.3, 0.4), strict=True):
        _rest(engine, claim, score)  # p4 .. p8
    # 8 finished, p3 still training: whatever it scores, p6 (0.95) and p1 (0.9) are in the
    # best 3 of the 9; the third is p2 (0.7) or p3
    order = [claims.claim_next(engine, 1, POINTS, "w", LADDER) for _ in range(3)]
    assert [(c.point, c.epochs, c.earlier_trial) for c in order[:2]] == [("p6", 3, 6),
                                                                         ("p1", 3, 1)]
    assert order[2] is None  # p3 trains, the rest rest: nothing to claim now
    assert claims.pending(engine, 1, POINTS, LADDER) == 3  # p3 and the two promotions
    halving.rest(engine, 1, "p3", "w", 1, 0.8)
    third = claims.claim_next(engine, 1, POINTS, "w", LADDER)
    assert (third.point, third.epochs) == ("p3", 3)  # 0.8 beats p2's 0.7: exactly 3 go on
    for point, score in (("p1", 0.91), ("p6", 0.97)):
        halving.rest(engine, 1, point, "w", 3, score)
    assert claims.claim_next(engine, 1, POINTS, "w", LADDER) is None  # p3 may still win
    halving.rest(engine, 1, "p3", "w", 3, 0.85)
    top = claims.claim_next(engine, 1, POINTS, "w", LADDER)
    assert (top.point, top.epochs) == ("p6", 9)  # the best third of rung 3
    claims.update(engine, 1, "p6", "w", state="done")
    assert claims.claim_next(engine, 1, POINTS, "w", LADDER) is None
    assert claims.pending(engine, 1, POINTS, LADDER) == 0  # the study is done


def test_a_lower_objective_is_better_where_the_study_minimises(db_url):
    engine = open_storage(db_url).engine
    ladder = Ladder(rungs=(1, 3), factor=3, minimize=True)
    for score in (0.5, 0.2, 0.7):
        _rest(engine, claims.claim_next(engine, 1, POINTS[:3], "w", ladder), score)
    assert claims.claim_next(engine, 1, POINTS[:3], "w", ladder).point == "p1"


def test_each_promotion_goes_to_one_worker_of_many(db_url):
    engine = open_storage(db_url).engine
    points = [f"p{i}" for i in range(30)]
    for i in range(30):  # 30 points rest at rung 1 (claimed without the ladder's promotions)
        halving.rest(engine, 1, claims.claim_next(engine, 1, points, "w").point, "w", 1, i / 30)
    got: list[claims.Claim] = []

    def worker(name: str) -> None:  # one engine, a connection each (SQLite serialises them)
        while (claim := claims.claim_next(engine, 1, points, name, LADDER)) is not None:
            got.append(claim)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(c.point for c in got) == sorted(f"p{i}" for i in range(20, 30))
    assert {c.epochs for c in got} == {3}


def test_a_rung_of_fewer_points_than_its_factor_still_promotes_its_best(db_url):
    # 4 points, factor 3: rung 1 promotes 4 // 3 = 1, once all 4 finished it; at rung 3 that
    # one alone finishes, and 1 // 3 = 0 would leave the grid without a point at the top
    engine = open_storage(db_url).engine
    points = POINTS[:4]
    for score in (0.5, 0.2, 0.7):
        _rest(engine, claims.claim_next(engine, 1, points, "w", LADDER), score)
    last = claims.claim_next(engine, 1, points, "w", LADDER)
    assert last.point == "p3"  # it may beat p2's 0.7
    assert claims.claim_next(engine, 1, points, "w", LADDER) is None
    _rest(engine, last, 0.1)
    promoted = claims.claim_next(engine, 1, points, "w", LADDER)
    assert (promoted.point, promoted.epochs) == ("p2", 3)
    halving.rest(engine, 1, "p2", "w", 3, 0.75)
    top = claims.claim_next(engine, 1, points, "w", LADDER)
    assert (top.point, top.epochs) == ("p2", 9)
    claims.update(engine, 1, "p2", "w", state="done")
    assert claims.claim_next(engine, 1, points, "w", LADDER) is None
    assert claims.pending(engine, 1, points, LADDER) == 0


def test_a_points_seeds_are_promoted_together_on_their_mean(db_url):
    # 3 points x 2 seeds (search.repeats: 2), factor 3: the point whose seeds' mean is best
    # goes on, both seeds; a point is ranked once both its seeds finished the rung
    engine = open_storage(db_url).engine
    keys = [f"{p}s{s}" for p in "abc" for s in (0, 1)]
    ladder = Ladder(rungs=(1, 3), factor=3, minimize=False,
                    groups={k: k[0] for k in keys})
    scores = {"as0": 0.9, "as1": 0.1, "bs0": 0.6, "bs1": 0.6, "cs0": 0.2, "cs1": 0.3}
    for _ in range(5):  # all but cs1: b leads on its mean (0.6 against a's 0.5)
        claim = claims.claim_next(engine, 1, keys, "w", ladder)
        claims.update(engine, 1, claim.point, "w", trial_number=keys.index(claim.point))
        halving.rest(engine, 1, claim.point, "w", 1, scores[claim.point])
    # 2 points finished (c has one seed left): 2 // 3 = 0 promoted yet; as0 alone would be
    # the best claim, but a point's seeds are ranked on their mean
    last = claims.claim_next(engine, 1, keys, "w", ladder)
    assert last.point == "cs1"
    claims.update(engine, 1, "cs1", "w", trial_number=5)
    halving.rest(engine, 1, "cs1", "w", 1, scores["cs1"])
    promoted = [claims.claim_next(engine, 1, keys, "w", ladder) for _ in range(3)]
    assert sorted((c.point, c.epochs) for c in promoted[:2]) == [("bs0", 3), ("bs1", 3)]
    assert promoted[2] is None


def test_a_point_that_failed_before_its_rung_is_not_waited_for(db_url):
    engine = open_storage(db_url).engine
    points = POINTS[:3]
    first, failing, last = (claims.claim_next(engine, 1, points, "w", LADDER) for _ in range(3))
    _rest(engine, first, 0.5)
    _rest(engine, last, 0.6)
    assert claims.claim_next(engine, 1, points, "w", LADDER) is None  # p1 may still win
    claims.update(engine, 1, failing.point, "w", state="done")  # its trial failed
    promoted = claims.claim_next(engine, 1, points, "w", LADDER)
    assert (promoted.point, promoted.epochs) == ("p2", 3)
