"""The one image reader (yolokit.data.images): verdicts decided by the decoder, stored pixels, every mode to RGB."""

import numpy as np
import pytest

from tests.fuzz.conftest import bomb_png, corrupt_middle_jpeg, exif_rotated_jpeg, jpeg, padded_jpeg, truncated_jpeg
from yolokit.data.images import ImageError, probe_image, read_image, read_image_bgr, verify_image


@pytest.mark.parametrize("make, kind", [
    (truncated_jpeg, "truncated_image"),
    (corrupt_middle_jpeg, "corrupt_image"),
    (lambda: b"", "corrupt_image"),
    (lambda: b"<html>not an image</html>", "corrupt_image"),
    (bomb_png, "oversized_image"),
    (lambda: jpeg()[:-2], "truncated_image"),  # only the end marker missing
])
def test_bad_files_get_one_verdict(tmp_path, shared, make, kind):
    path = tmp_path / "x.jpg"
    path.write_bytes(make())
    assert verify_image(path)[0] == kind
    with pytest.raises(ImageError, match="x.jpg") as err:
        read_image(path)
    assert err.value.kind == kind
    with pytest.raises(ImageError):
        read_image_bgr(path)


def test_header_probe_sees_size_not_truncation(tmp_path, shared):
    """Indexing reads headers only: a truncated JPEG has a fine header (its verdict comes at decode), a bomb is
    caught from the header alone."""
    (tmp_path / "t.jpg").write_bytes(truncated_jpeg())
    (tmp_path / "b.png").write_bytes(bomb_png())
    assert probe_image(tmp_path / "t.jpg") == ((417, 650), None, "")
    assert probe_image(tmp_path / "b.png")[1] == "oversized_image"
    assert probe_image(tmp_path / "missing.jpg")[1] == "missing_image"


def test_padding_after_end_marker_is_valid(tmp_path, shared):
    (tmp_path / "p.jpg").write_bytes(padded_jpeg())
    (tmp_path / "a.jpg").write_bytes(jpeg())
    assert verify_image(tmp_path / "p.jpg") == (None, "")
    np.testing.assert_array_equal(read_image(tmp_path / "p.jpg"), read_image(tmp_path / "a.jpg"))


def test_same_pixels_as_opencv_without_exif(tmp_path, shared):
    """Pillow and OpenCV's IMREAD_IGNORE_ORIENTATION decode the same stored pixels; BGR is the same array flipped."""
    import cv2

    exif_rotated_jpeg(shared / "raccoon" / "images" / "raccoon-1.jpg", tmp_path / "r.jpg", 8)
    rgb = read_image(tmp_path / "r.jpg")
    ref = cv2.imread(str(tmp_path / "r.jpg"), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    assert rgb.shape == (417, 650, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, ref[:, :, ::-1])
    bgr = read_image_bgr(tmp_path / "r.jpg")
    np.testing.assert_array_equal(bgr, ref)
    assert bgr.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "CMYK", "I;16", "LA"])
def test_every_mode_becomes_rgb(tmp_path, mode):
    from PIL import Image

    grey = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    if mode == "I;16":
        im = Image.fromarray(grey.astype(np.uint16) * 257)  # uint16 -> mode I;16
    else:
        im = Image.fromarray(grey, mode="L").convert(mode)
    path = tmp_path / ("x.tif" if mode in ("CMYK", "I;16") else "x.png")
    im.save(path)
    out = read_image(path)
    assert out.shape == (6, 8, 3) and out.dtype == np.uint8
    if mode in ("L", "I;16", "RGBA", "LA"):
        np.testing.assert_array_equal(out[:, :, 0], grey)
