"""yolokit: grid/anchor YOLO detectors, from Darknet files to mAP.

The top level stays light: heavy submodules are imported on first use (PEP 562), so
``import yolokit`` and ``yolokit --help`` do not pay for torch model code they do not need.
"""

__version__ = "0.1.0"

__all__ = ["postprocess", "load", "Predictor", "evaluate", "__version__"]

# name -> (module, attribute)
_LAZY = {"postprocess": ("yolokit.models.postprocess", "postprocess"), "load": ("yolokit.models", "load"),
         "Predictor": ("yolokit.models.predict", "Predictor"), "evaluate": ("yolokit.eval", "evaluate")}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'yolokit' has no attribute {name!r}")
