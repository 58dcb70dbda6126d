"""archgen: describe an encoder-decoder in YAML, get a Keras 3 model with every crop computed.

::

    import archgen

    spec = archgen.load("conf/unet.yaml", ["encoder.depth=3"])   # validated ArchSpec
    plan = archgen.plan(spec)                                    # shapes, crops, params; no TensorFlow
    model = archgen.build_model(spec, precision="mixed_bfloat16")  # keras.Model

Importing ``archgen`` is cheap: the API's modules (pydantic, Hydra, Keras) load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from archgen.errors import ArchgenError

__version__ = "0.1.0"
__all__ = ["ArchgenError", "__version__", "build_model", "crop_to_output", "load", "plan", "predict_tiled"]

_LAZY = {"load": "archgen.api", "plan": "archgen.api", "build_model": "archgen.api",
         "crop_to_output": "archgen.tiling", "predict_tiled": "archgen.tiling"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'archgen' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
