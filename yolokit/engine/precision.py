"""Mixed precision for training: which autocast dtype this device runs fast, checked at run time.

* CUDA: fp16 autocast with a gradient scaler (``torch.amp``), the usual AMP.
* CPU: bf16 autocast where the CPU has native bf16 dot products (AVX-512 BF16 or AMX: oneDNN then runs the
  convolutions in bf16 at about twice the fp32 rate); fp32 elsewhere, where bf16 would be emulated and slower.
  bf16 keeps fp32's exponent range, so no loss scaling is needed; the loss itself is computed in fp32.
"""

from __future__ import annotations

import contextlib
import functools

import torch


@functools.lru_cache(maxsize=None)
def cpu_has_bf16() -> bool:
    """Whether this CPU runs bf16 natively (oneDNN's own check: AVX-512 BF16, AMX, or Arm BF16)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast_dtype(device: torch.device, amp: bool = True) -> torch.dtype | None:
    """The autocast dtype for training on ``device`` (None: fp32, no autocast)."""
    if not amp:
        return None
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and cpu_has_bf16():
        return torch.bfloat16
    return None


def describe(dtype: torch.dtype | None, channels_last: bool) -> str:
    """``bf16 autocast, channels_last`` / ``fp32`` ... for the start-of-run line."""
    name = {torch.float16: "fp16 AMP", torch.bfloat16: "bf16 autocast"}.get(dtype, "fp32")
    return name + (", channels_last" if channels_last else "")


@contextlib.contextmanager
def flush_denormals(enabled: bool = True):
    """Treat denormal floats as zero while training (x86 FTZ/DAZ). Fine-tuning from pretrained weights produces
    denormal gradients and activations; on the CPU each costs a slow microcode path (measured: about 10% of a
    yolov3-tiny training step). Training never needs values below 1e-38. Restored to torch's default (off) after."""
    if not enabled:
        yield
        return
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
