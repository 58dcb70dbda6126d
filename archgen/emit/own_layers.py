"""Keras layers archgen defines where Keras has none, written with ``keras.ops`` only (every back end):

- ``DepthwiseConvTranspose``: the transposed conv of a depthwise conv (MedNeXt's up block); Keras's
  ``Conv{n}DTranspose`` has no groups.
- ``LinearUpSampling``: linear interpolation by whole factors in 1D and 3D, as PyTorch's
  ``interpolate(mode="linear" / "trilinear", align_corners=False)``; Keras's ``UpSampling1D`` and
  ``UpSampling3D`` only repeat (2D uses ``UpSampling2D(interpolation="bilinear")``, the same map).

Both are registered with Keras as ``archgen>...``, so a saved model loads with ``safe_mode=True``
once this module is imported (``import archgen.emit`` does it).
"""

from __future__ import annotations

from archgen.backend import import_keras

keras = import_keras()
ops = keras.ops


def _merge_into(parts: list, x, axis: int):
    """``parts`` (each shaped as ``x``) interleaved along ``axis``: out[j * len(parts) + r] = parts[r][j]."""
    shape = list(ops.shape(x))
    shape[0] = -1  # the batch, whatever it is
    shape[axis] = shape[axis] * len(parts)
    return ops.reshape(ops.stack(parts, axis=axis + 1), shape)


def _along(x, axis: int, start, stop):
    return x[(slice(None),) * axis + (slice(start, stop),)]


@keras.saving.register_keras_serializable(package="archgen")
class DepthwiseConvTranspose(keras.layers.Layer):
    """Each channel spread by a filter of its own, as PyTorch's ConvTranspose with groups equal to
    the channels and no padding: input i lands on outputs i * stride .. i * stride + kernel - 1, so a
    size n becomes (n - 1) * stride + kernel (the planner crops PyTorch's padding after it).

    Computed as the transposed conv is defined: zeros inserted between the inputs (stride - 1 after
    each but the last), kernel - 1 zeros on both sides, then a depthwise conv with the flipped filter.
    The kernel is (*kernel_size, 1, channels), a grouped conv's layout."""

    def __init__(self, kernel_size, strides, use_bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = tuple(kernel_size)
        self.strides = tuple(strides)
        self.use_bias = use_bias

    def build(self, input_shape):
        channels = input_shape[-1]
        self.kernel = self.add_weight(shape=(*self.kernel_size, 1, channels), initializer="glorot_uniform",
                                      name="kernel")
        self.bias = self.add_weight(shape=(channels,), initializer="zeros", name="bias") if self.use_bias else None

    def call(self, inputs):
        x = inputs
        for axis, stride in enumerate(self.strides, start=1):
            if stride > 1:  # (n - 1) * stride + 1: each input followed by stride - 1 zeros, but the last
                zeros = ops.zeros_like(x)
                x = _along(_merge_into([x] + [zeros] * (stride - 1), x, axis), axis, None, 1 - stride)
        x = ops.pad(x, [[0, 0], *[[k - 1, k - 1] for k in self.kernel_size], [0, 0]])
        kernel = ops.cast(self.kernel, x.dtype)
        for axis in range(len(self.kernel_size)):
            kernel = ops.flip(kernel, axis=axis)
        y = ops.conv(x, kernel, strides=1, padding="valid")
        return y if self.bias is None else y + ops.cast(self.bias, y.dtype)

    def compute_output_shape(self, input_shape):
        spatial = [None if n is None else (n - 1) * s + k
                   for n, s, k in zip(input_shape[1:-1], self.strides, self.kernel_size)]
        return (input_shape[0], *spatial, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size, "strides": self.strides,
                "use_bias": self.use_bias}


@keras.saving.register_keras_serializable(package="archgen")
class LinearUpSampling(keras.layers.Layer):
    """Up-sampling by a whole factor per axis with linear interpolation between neighbours,
    half-pixel centres: output j reads the input at (j + 0.5) / factor - 0.5, clamped to the first and
    last rows (PyTorch's linear modes with align_corners=False)."""

    def __init__(self, size, **kwargs):
        super().__init__(**kwargs)
        self.size = tuple(size)

    def call(self, inputs):
        x = inputs
        for axis, factor in enumerate(self.size, start=1):
            if factor == 1:
                continue
            first, last = _along(x, axis, 0, 1), _along(x, axis, -1, None)
            before = ops.concatenate([first, _along(x, axis, None, -1)], axis=axis)  # row i - 1, edge kept
            after = ops.concatenate([_along(x, axis, 1, None), last], axis=axis)  # row i + 1, edge kept
            parts = []
            for r in range(factor):
                offset = (r + 0.5) / factor - 0.5  # where output r of each row reads, from that row
                neighbour = before if offset < 0 else after
                parts.append(x if offset == 0 else x * (1 - abs(offset)) + neighbour * abs(offset))
            x = _merge_into(parts, x, axis)
        return x

    def compute_output_shape(self, input_shape):
        spatial = [None if n is None else n * f for n, f in zip(input_shape[1:-1], self.size)]
        return (input_shape[0], *spatial, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "size": self.size}
