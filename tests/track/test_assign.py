import numpy as np

from yolokit.track.assign import iou_matrix, linear_assignment


def test_iou_matrix_hand_computed():
    a = np.array([[0, 0, 10, 10], [0, 0, 2, 2]], dtype=float)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]], dtype=float)
    iou = iou_matrix(a, b)
    assert iou.shape == (2, 3)
    assert np.isclose(iou[0, 0], 50 / 150)          # half overlap: 50 / (100 + 100 - 50)
    assert iou[0, 1] == 0 and iou[0, 2] == 1
    assert np.isclose(iou[1, 2], 4 / 100)
    assert iou_matrix(a, np.empty((0, 4))).shape == (2, 0)


def test_iou_matrix_matches_a_loop():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 50, (7, 2))
    a = np.concatenate((xy, xy + rng.uniform(1, 30, (7, 2))), 1)
    xy = rng.uniform(0, 50, (5, 2))
    b = np.concatenate((xy, xy + rng.uniform(1, 30, (5, 2))), 1)

    def one(p, q):
        w = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
        h = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
        union = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - w * h
        return w * h / union

    loop = np.array([[one(p, q) for q in b] for p in a])
    assert np.allclose(iou_matrix(a, b), loop)


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
