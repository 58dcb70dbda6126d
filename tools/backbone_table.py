"""Measure keras.applications backbones and print their rows for ``archgen/backbones/table.py``.

    python tools/backbone_table.py ResNet50 MobileNetV3Small ...

For each constructor: the tap at each stride (1, 2, ..., 32) is the last layer, in the model's
layer order, whose output has that stride (input, preprocessing and padding layers left out);
where that layer's name is one Keras numbers automatically (``re_lu_2``: it changes with how
many models were built before), the tap is the input of the named layer that reads it, or the
model's output. Parameters are counted at 224x224x3 with ``weights=None``; FLOPs (2 x
multiply-adds of the convolutions) are fitted as ``per_tile * (H / 32) * (W / 32) + constant`` from 64x64
and 96x96 (the constant: squeeze-and-excitation convs on pooled 1x1 maps) and checked at 224.
"""

from __future__ import annotations

import os
import re
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

L = keras.layers
SKIPPED = (L.InputLayer, L.Rescaling, L.Normalization, L.ZeroPadding2D)
AUTO_NAME = re.compile(r"^(activation|re_lu|multiply|add|layer_normalization)(_\d+)?$")


def conv_flops(model) -> int:
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):  # ConvNeXt's stem and down-sampling blocks are Sequential models
            total += conv_flops(layer)
            continue
        if isinstance(layer, (L.Conv2D, L.DepthwiseConv2D)):
            out, cin = layer.output.shape, layer.input.shape[-1]
            taps = layer.kernel_size[0] * layer.kernel_size[1]
            per_position = cin * layer.depth_multiplier if isinstance(layer, L.DepthwiseConv2D) else \
                cin * layer.filters // layer.groups
            total += 2 * out[1] * out[2] * taps * per_position
        elif isinstance(layer, L.Dense) and len(layer.input.shape) == 4:  # ConvNeXt's pointwise convs
            out = layer.output.shape
            total += 2 * out[1] * out[2] * layer.input.shape[-1] * layer.units
    return total


def build(constructor: str, size: int):
    return getattr(keras.applications, constructor)(include_top=False, weights=None, input_shape=(size, size, 3))


def taps(model, size: int = 224) -> list[tuple[int, int, str, str]]:
    """(stride, channels, where, layer name): where is "output" or "input"."""
    last: dict[int, object] = {}
    for layer in model.layers:
        shape = layer.output.shape
        if isinstance(layer, SKIPPED) or len(shape) != 4 or shape[1] == 1 or size % shape[1]:
            continue
        last[size // shape[1]] = layer
    rows = []
    for stride in sorted(s for s in last if s <= 32):
        layer = last[stride]
        where, name = "output", layer.name
        if AUTO_NAME.match(layer.name):
            readers = [other for other in model.layers if other.input is layer.output]
            named = [r for r in readers if not AUTO_NAME.match(r.name)]
            if layer.output is model.outputs[0]:
                where, name = "output", ""
            else:
                where, name = "input", named[0].name
        rows.append((stride, int(layer.output.shape[-1]), where, name))
    return rows


def main(names: list[str]) -> None:
    for constructor in names:
        big = build(constructor, 224)
        f64, f96 = conv_flops(build(constructor, 64)), conv_flops(build(constructor, 96))
        per_tile = (f96 - f64) // (3 * 3 - 2 * 2)  # per 32x32 tile of the input
        constant = f64 - per_tile * 2 * 2
        assert per_tile * 7 * 7 + constant == conv_flops(big), constructor
        print(f"{constructor}: params={big.count_params()} flops_per_tile={per_tile} "
              f"flops_constant={constant} taps={taps(big)}", flush=True)
        keras.backend.clear_session()


if __name__ == "__main__":
    main(sys.argv[1:])
