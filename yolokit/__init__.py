"""yolokit: grid/anchor YOLO detectors, from Darknet files to mAP.

The top level stays light: heavy submodules are imported on first use (PEP 562), so
``import yolokit`` and ``yolokit --help`` do not pay for torch model code they do not need.
"""

__version__ = "0.1.0"

__all__ = ["postprocess", "load", "__version__"]


def __getattr__(name):
    if name == "postprocess":
        from yolokit.postprocess import postprocess

        return postprocess
    if name == "load":
        from yolokit.models import load

        return load
    raise AttributeError(f"module 'yolokit' has no attribute {name!r}")
