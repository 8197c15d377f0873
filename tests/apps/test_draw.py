"""Drawing that follows the frame: text and lines from the image size, labels inside the frame, never over one
another."""

import numpy as np

from yolokit.apps.draw import LabelPlacer, draw_detections, line_style


def test_style_scales_with_the_frame():
    small, big = line_style(np.zeros((240, 320, 3), np.uint8)), line_style(np.zeros((1080, 1920, 3), np.uint8))
    assert small[0] == 1 and big[0] == 3
    assert 0.3 <= small[1] < 0.35 and 1.0 < big[1] < 1.2  # 7 px text on 240p, 24 px on 1080p


def test_placer_keeps_tags_in_the_frame_and_apart():
    p = LabelPlacer(320, 240)
    assert p.place((0, 0, 50, 50), 40, 10) == (0, 0)              # top edge: inside the box's top
    assert p.place((300, 100, 320, 140), 40, 10) == (280, 90)     # right edge: shifted left, inside the frame
    # two boxes with the same top-left corner: the second tag goes inside the top, the third below
    assert p.place((100, 100, 160, 150), 40, 10) == (100, 90)
    assert p.place((100, 100, 170, 160), 40, 10) == (100, 100)
    assert p.place((100, 100, 180, 170), 40, 10) == (100, 170)
    rects = p.placed
    assert not any(a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
                   for i, a in enumerate(rects) for b in rects[i + 1:])
    assert all(0 <= r[0] and r[2] <= 320 and 0 <= r[1] and r[3] <= 240 for r in rects)


def test_crowded_frame_labels_do_not_overlap():
    image = np.full((240, 320, 3), 90, np.uint8)
    dets = np.array([[100 + 3 * i, 100, 140 + 3 * i, 130, 0.9 - 0.1 * i, 0] for i in range(6)], np.float32)
    draw_detections(image, dets, ["car"])  # tags that find no free spot are left out; the boxes stay
    changed = (image != 90).any(-1)
    assert changed[100, 100:141].all() and changed[130, 115:156].all()
