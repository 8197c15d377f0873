import numpy as np

from yolokit.track.assign import linear_assignment


def test_assignment_is_one_to_one_and_respects_the_limit():
    cost = np.array([[0.1, 0.2, 0.9],
                     [0.15, 0.95, 0.95]])
    matches, free_rows, free_cols = linear_assignment(cost, max_cost=0.5)
    # Greedy would give row 0 -> col 0 and leave row 1 unmatched; the optimum is 0->1, 1->0.
    assert sorted(map(tuple, matches.tolist())) == [(0, 1), (1, 0)]
    assert free_rows.size == 0 and free_cols.tolist() == [2]


def test_a_forbidden_pair_does_not_displace_an_allowed_one():
    # Row 0 may only pair with col 0 (cost 0.4 <= 0.5); row 1 prefers col 0 too but may take col 1.
    cost = np.array([[0.4, 9.0],
                     [0.0, 0.45]])
    matches, _, _ = linear_assignment(cost, max_cost=0.5)
    assert sorted(map(tuple, matches.tolist())) == [(0, 0), (1, 1)]
    matches, free_rows, free_cols = linear_assignment(np.full((2, 2), 0.9), max_cost=0.5)
    assert len(matches) == 0 and free_rows.tolist() == [0, 1] and free_cols.tolist() == [0, 1]
