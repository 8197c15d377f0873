import numpy as np

from yolokit.apps.draw import TrackDrawer


def hue(bgr) -> float:
    import colorsys

    return colorsys.rgb_to_hsv(*[c / 255 for c in bgr[::-1]])[0]


def test_colours_follow_first_appearance_not_the_id():
    # Golden-ratio hues of the ids themselves: 21, 34, 55, 89 would be nearly one colour.
    drawer = TrackDrawer()
    image = np.zeros((100, 200, 3), np.uint8)
    drawer(image, np.array([[10 + 40 * i, 10, 30 + 40 * i, 30, 0.9, 0, tid] for i, tid in enumerate((21, 34, 55, 89))]))
    hues = [hue(drawer.colors[t]) for t in (21, 34, 55, 89)]
    assert min(min(abs(a - b), 1 - abs(a - b)) for i, a in enumerate(hues) for b in hues[i + 1:]) > 0.1
    assert tuple(int(v) for v in image[10, 15]) == drawer.colors[21]       # the box edge in its colour


def test_trail_follows_the_track_and_hides_while_lost():
    drawer = TrackDrawer(["car"], trail=5)
    for t in range(4):
        image = np.zeros((100, 200, 3), np.uint8)
        drawer(image, np.array([[10 + 20 * t, 10, 30 + 20 * t, 30, 0.9, 0, 3]]))
    assert list(drawer.points[3]) == [(20, 30), (40, 30), (60, 30), (80, 30)]   # bottom-centres
    color = np.array(drawer.colors[3])
    assert (np.abs(image[30, 45].astype(int) - color) < 60).all()              # the trail between two points
    lost = drawer(np.zeros((100, 200, 3), np.uint8), np.empty((0, 7)))
    assert lost.max() == 0 and 3 in drawer.points                              # not drawn, but remembered
    for _ in range(5):
        drawer(np.zeros((100, 200, 3), np.uint8), np.empty((0, 7)))
    assert 3 not in drawer.points                                              # forgotten after `trail` frames
