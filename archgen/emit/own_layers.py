"""Keras layers archgen defines where Keras has none, written with ``keras.ops`` only (every back end):

- ``DepthwiseConvTranspose``: the transposed conv of a depthwise conv (MedNeXt's up block); Keras's
  ``Conv{n}DTranspose`` has no groups.
- ``LinearUpSampling``: linear interpolation by whole factors in 1D and 3D, as PyTorch's
  ``interpolate(mode="linear" / "trilinear", align_corners=False)``; Keras's ``UpSampling1D`` and
  ``UpSampling3D`` only repeat (2D uses ``UpSampling2D(interpolation="bilinear")``, the same map).

- ``WindowAttention``: Swin's (shifted) window self-attention with its relative position bias.
- ``PatchMerge``: Swin's patch merging before its norm and reduction (2x2(x2) blocks to channels).
- ``GlobalResponseNorm``: ConvNeXt v2's (MedNeXt's) global response normalisation.

All are registered with Keras as ``archgen>...``, so a saved model loads with ``safe_mode=True``
once this module is imported (``import archgen.emit`` does it).
"""

from __future__ import annotations

from archgen.backend import import_keras
from archgen.kinds.transformer import window_layout

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
            n = x.shape[axis]
            if n is not None:  # rows i - 1 and i + 1, the edges kept, gathered by fixed indices: TensorFlow's
                # graph optimiser (remapping with oneDNN) mis-sized the sliced-and-joined form on a 2-row map
                before = ops.take(x, [max(i - 1, 0) for i in range(n)], axis=axis)
                after = ops.take(x, [min(i + 1, n - 1) for i in range(n)], axis=axis)
            else:  # a size known only when it runs
                first, last = _along(x, axis, 0, 1), _along(x, axis, -1, None)
                before = ops.concatenate([first, _along(x, axis, None, -1)], axis=axis)
                after = ops.concatenate([_along(x, axis, 1, None), last], axis=axis)
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


def relative_position_index(window) -> "np.ndarray":
    """For each pair of positions of a window, the row of the bias table of their offset (Swin's)."""
    import numpy as np

    coords = np.stack(np.meshgrid(*[np.arange(w) for w in window], indexing="ij")).reshape(len(window), -1)
    rel = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0)
    rel = rel + np.array([w - 1 for w in window])
    strides = [int(np.prod([2 * w - 1 for w in window[a + 1:]])) for a in range(len(window))]
    return (rel * np.array(strides)).sum(-1)


def shifted_window_mask(padded, ws, shifts) -> "np.ndarray":
    """(windows, n, n): -100 between positions that the cyclic shift brought from different regions."""
    import itertools

    import numpy as np

    img = np.zeros(padded)
    regions = [(slice(-w), slice(-w, -s), slice(-s, None)) for w, s in zip(ws, shifts)]
    for cnt, where in enumerate(itertools.product(*regions)):
        img[where] = cnt
    windows = _partition_np(img[..., None], ws)[..., 0]
    diff = windows[:, None, :] - windows[:, :, None]
    return np.where(diff != 0, -100.0, 0.0).astype("float32")


def _partition_np(x, ws):
    import numpy as np

    nd = len(ws)
    shape = []
    for n, w in zip(x.shape[:nd], ws):
        shape += [n // w, w]
    x = x.reshape(*shape, x.shape[-1])
    x = np.transpose(x, [*range(0, 2 * nd, 2), *range(1, 2 * nd, 2), 2 * nd])
    return x.reshape(-1, int(np.prod(ws)), x.shape[-1])


@keras.saving.register_keras_serializable(package="archgen")
class WindowAttention(keras.layers.Layer):
    """Swin's (shifted) window self-attention on a map (Liu et al. 2021; MONAI's SwinTransformerBlock
    between its two norms): the map padded with zeros at the end to whole windows, rolled back by
    ``shift``, cut into windows of ``window`` positions; in each window multi-head attention with a
    learned bias per head and relative offset (a table of prod(2 * window - 1) rows, indexed as the
    full window's offsets are, its first n x n entries where a small map makes the window smaller), and
    where shifted a mask of -100 between positions from different regions; then rolled forward and
    cropped. On an axis where the map is not larger than ``window`` the window is the map and there is
    no shift. Weights: ``qkv`` kernel (C, 3C) whose outputs are (q/k/v, head, channel), its bias,
    ``proj`` kernel (C, C) and bias, and the bias table (rows, heads)."""

    def __init__(self, heads, window, shift, qkv_bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.heads = heads
        self.window = tuple(window)
        self.shift = tuple(shift)
        self.qkv_bias = qkv_bias

    def build(self, input_shape):
        import numpy as np

        sizes, c = tuple(input_shape[1:-1]), input_shape[-1]
        if any(n is None for n in sizes):
            raise ValueError("window attention needs every spatial size known")
        self.ws, self.shifts, self.padded = window_layout(sizes, self.window, self.shift)
        n = int(np.prod(self.ws))
        rows = int(np.prod([2 * w - 1 for w in self.window]))
        self.qkv_kernel = self.add_weight(shape=(c, 3 * c), initializer="glorot_uniform", name="qkv_kernel")
        self.qkv_bias_weight = (self.add_weight(shape=(3 * c,), initializer="zeros", name="qkv_bias")
                                if self.qkv_bias else None)
        self.proj_kernel = self.add_weight(shape=(c, c), initializer="glorot_uniform", name="proj_kernel")
        self.proj_bias = self.add_weight(shape=(c,), initializer="zeros", name="proj_bias")
        self.table = self.add_weight(shape=(rows, self.heads), initializer=keras.initializers.TruncatedNormal(
            stddev=0.02), name="relative_position_bias_table")
        self.n = n
        self.index = relative_position_index(self.window)[:n, :n].reshape(-1).astype("int32")
        self.mask = shifted_window_mask(self.padded, self.ws, self.shifts) if any(self.shifts) else None

    def call(self, inputs):
        x, nd = inputs, len(self.ws)
        sizes, c = tuple(inputs.shape[1:-1]), inputs.shape[-1]
        heads, n = self.heads, self.n
        pads = [[0, 0], *[[0, p - s] for s, p in zip(sizes, self.padded)], [0, 0]]
        if any(p for _, p in pads):
            x = ops.pad(x, pads)
        for axis, s in enumerate(self.shifts, start=1):
            if s:
                x = ops.roll(x, -s, axis=axis)
        counts = [p // w for p, w in zip(self.padded, self.ws)]
        shape = [-1]
        for count, w in zip(counts, self.ws):
            shape += [count, w]
        x = ops.reshape(x, (*shape, c))
        x = ops.transpose(x, [0, *range(1, 2 * nd, 2), *range(2, 2 * nd + 1, 2), 2 * nd + 1])
        x = ops.reshape(x, (-1, n, c))
        qkv = ops.matmul(x, ops.cast(self.qkv_kernel, x.dtype))
        if self.qkv_bias_weight is not None:
            qkv = qkv + ops.cast(self.qkv_bias_weight, x.dtype)
        qkv = ops.transpose(ops.reshape(qkv, (-1, n, 3, heads, c // heads)), (2, 0, 3, 1, 4))
        q, k, v = qkv[0] * ((c // heads) ** -0.5), qkv[1], qkv[2]
        attn = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)))
        bias = ops.take(ops.cast(self.table, x.dtype), self.index, axis=0)
        attn = attn + ops.transpose(ops.reshape(bias, (n, n, heads)), (2, 0, 1))[None]
        if self.mask is not None:
            windows = self.mask.shape[0]
            attn = ops.reshape(attn, (-1, windows, heads, n, n)) + ops.cast(self.mask, x.dtype)[None, :, None]
            attn = ops.reshape(attn, (-1, heads, n, n))
        attn = ops.softmax(attn, axis=-1)
        x = ops.reshape(ops.transpose(ops.matmul(attn, v), (0, 2, 1, 3)), (-1, n, c))
        x = ops.matmul(x, ops.cast(self.proj_kernel, x.dtype)) + ops.cast(self.proj_bias, x.dtype)
        x = ops.reshape(x, (-1, *counts, *self.ws, c))
        order = [0]
        for a in range(nd):
            order += [1 + a, 1 + nd + a]
        x = ops.reshape(ops.transpose(x, (*order, 2 * nd + 1)), (-1, *self.padded, c))
        for axis, s in enumerate(self.shifts, start=1):
            if s:
                x = ops.roll(x, s, axis=axis)
        if any(p != s for s, p in zip(sizes, self.padded)):
            x = x[(slice(None), *[slice(0, s) for s in sizes])]
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "heads": self.heads, "window": self.window, "shift": self.shift,
                "qkv_bias": self.qkv_bias}


@keras.saving.register_keras_serializable(package="archgen")
class PatchMerge(keras.layers.Layer):
    """Each 2x..x2 block of positions as one position of 2^ndim x the channels (Swin's patch merging
    before its norm and reduction): an odd size padded with a zero row at the end; the channels in
    the order of the offsets, row-major ((0, 0, 0), (0, 0, 1), (0, 1, 0), ...), each a block of C."""

    def call(self, inputs):
        import itertools

        x = inputs
        sizes = tuple(inputs.shape[1:-1])
        pads = [[0, 0], *[[0, (n or 0) % 2] for n in sizes], [0, 0]]
        if any(p for _, p in pads):
            x = ops.pad(x, pads)
        parts = [x[(slice(None), *[slice(o, None, 2) for o in offset])]
                 for offset in itertools.product(range(2), repeat=len(sizes))]
        return ops.concatenate(parts, axis=-1)

    def compute_output_shape(self, input_shape):
        sizes = [None if n is None else (n + 1) // 2 for n in input_shape[1:-1]]
        return (input_shape[0], *sizes, input_shape[-1] * 2 ** len(sizes))


@keras.saving.register_keras_serializable(package="archgen")
class GlobalResponseNorm(keras.layers.Layer):
    """ConvNeXt v2's global response normalisation, as MedNeXt's (MONAI's ``global_resp_norm``):
    each channel's L2 norm over the whole map, divided by its mean over the channels (+ 1e-6),
    scales the input, ``gamma * (x * n) + beta + x``; ``gamma`` and ``beta`` start at zero, so the
    layer starts as the identity. The statistics are taken in float32 whatever the compute dtype."""

    epsilon = 1e-6

    def build(self, input_shape):
        channels = input_shape[-1]
        self.gamma = self.add_weight(shape=(channels,), initializer="zeros", name="gamma")
        self.beta = self.add_weight(shape=(channels,), initializer="zeros", name="beta")

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        axes = tuple(range(1, len(inputs.shape) - 1))
        gx = ops.sqrt(ops.sum(ops.square(x), axis=axes, keepdims=True))
        nx = gx / (ops.mean(gx, axis=-1, keepdims=True) + self.epsilon)
        gamma, beta = ops.cast(self.gamma, "float32"), ops.cast(self.beta, "float32")
        return ops.cast(gamma * (x * nx) + beta + x, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape
