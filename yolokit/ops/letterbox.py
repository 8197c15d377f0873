"""Letterbox (resize keeping the aspect ratio, then pad) and its inverse for boxes.

Darknet-style: the image is scaled by ``scale = min(W / w, H / h)`` (up or down) with bilinear
interpolation and centred on a canvas of the network size filled with Darknet's 0.5 grey
(``letterbox_image`` in darknet's image.c). For ``uint8`` images 0.5 grey is stored as 128 (0.502);
float images get 0.5 exactly. Boxes map forward as ``x' = x * scale + pad_x`` and back with
:func:`unletterbox_boxes`. Pure functions (numpy/OpenCV/torch only): the predictor, the apps and the train pipeline share them.
"""

from __future__ import annotations

import numpy as np

PAD_VALUE = 0.5  # Darknet's letterbox grey, as a fraction of full scale


def _hw(size) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def letterbox_params(orig_size, size) -> tuple[float, tuple[int, int], tuple[int, int]]:
    """``(scale, (new_h, new_w), (pad_x, pad_y))`` for an image of ``orig_size = (h, w)`` letterboxed
    into ``size`` (int or ``(H, W)``). Pads are the left/top offsets (the right/bottom get the rest)."""
    h, w = orig_size
    H, W = _hw(size)
    scale = min(W / w, H / h)
    new_w, new_h = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    return scale, (new_h, new_w), ((W - new_w) // 2, (H - new_h) // 2)


def letterbox(image: np.ndarray, size, pad_value: float = PAD_VALUE):
    """Resize ``image [h, w, C]`` keeping its aspect ratio and pad it to ``size`` (int or ``(H, W)``).

    Returns ``(image [H, W, C] same dtype, scale, (pad_x, pad_y))``; a box in the input maps to
    ``box * scale + (pad_x, pad_y, pad_x, pad_y)`` in the output. ``pad_value`` is a fraction of full
    scale (255 for uint8 images, 1.0 for float images).
    """
    import cv2

    H, W = _hw(size)
    scale, (new_h, new_w), (px, py) = letterbox_params(image.shape[:2], (H, W))
    full = 255.0 if image.dtype == np.uint8 else 1.0
    fill = np.asarray(np.round(pad_value * full) if image.dtype == np.uint8 else pad_value * full, image.dtype)
    out = np.full((H, W) + image.shape[2:], fill, dtype=image.dtype)
    if (new_h, new_w) != image.shape[:2]:
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    out[py:py + new_h, px:px + new_w] = image.reshape(new_h, new_w, *out.shape[2:])
    return out, scale, (px, py)


def letterbox_boxes(boxes, scale: float, pad):
    """Map xyxy ``boxes [N, 4]`` (numpy or Tensor) from the original image into the letterboxed one."""
    px, py = pad
    if hasattr(boxes, "new_tensor"):
        return boxes * scale + boxes.new_tensor((px, py, px, py))
    return np.asarray(boxes, np.float32) * np.float32(scale) + np.array((px, py, px, py), np.float32)


def unletterbox_boxes(boxes, scale: float, pad, orig_size=None):
    """Map xyxy ``boxes [N, 4]`` (numpy or Tensor; extra columns after the 4th are kept) from letterboxed
    network pixels back to the original image: ``(box - pad) / scale``, then clipped to ``orig_size =
    (h, w)`` when given. Returns a new array/tensor of the same kind."""
    px, py = pad
    if hasattr(boxes, "new_tensor"):
        out = boxes.clone()
        out[..., :4] = (boxes[..., :4] - boxes.new_tensor((px, py, px, py))) / scale
        if orig_size is not None:
            h, w = orig_size
            out[..., 0:4:2] = out[..., 0:4:2].clamp(0, w)
            out[..., 1:4:2] = out[..., 1:4:2].clamp(0, h)
        return out
    out = np.array(boxes, dtype=np.float32, copy=True)
    out[..., :4] = (out[..., :4] - np.array((px, py, px, py), np.float32)) / np.float32(scale)
    if orig_size is not None:
        h, w = orig_size
        out[..., 0:4:2] = out[..., 0:4:2].clip(0, w)
        out[..., 1:4:2] = out[..., 1:4:2].clip(0, h)
    return out
