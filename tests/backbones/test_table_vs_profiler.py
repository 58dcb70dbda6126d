"""Every backbone row's FLOPs against TensorFlow's profiler of the keras.applications model.

The table counts 2 x multiply-adds of the convolutions (ConvNeXt's pointwise Dense layers as 1x1
convs); the profiler's count of the same ops is its Conv2D, DepthwiseConv2dNative and MatMul nodes
(a Dense on a 4D tensor runs as a MatMul). The profiler's elementwise ops (bias adds, norms,
activations, pooling) are not the table's and are left out.

The model's inference graph is profiled as traced, variables and all. Keras runs a grouped conv
(ConvNeXt's 7x7 depthwise convs, Conv2D with groups = channels) on TensorFlow's CPU inside an
XLA-compiled function, whose body the profiler does not open; traced here without that wrapper, it
is TensorFlow's own grouped Conv2D, whose count the profiler takes from its kernel's shape (input
channels per group). Nothing is run, so the CPU's lack of grouped convs does not matter.

Two sizes a row, 224x224 and 64x96, so ``flops_per_tile`` and ``flops_constant`` are each checked,
not only their sum at one size. The tools/ script that fitted the rows counts Keras's layers;
nothing of it is used here. VGG16 and MobileNetV3Small (a squeeze-and-excitation constant, depthwise
convs) run in the fast suite; the other rows, ConvNeXt's frozen graphs among them, in the slow one.
"""

from __future__ import annotations

import pytest

from archgen.backbones import BACKBONES

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

MULTIPLY_ADDS = {"Conv2D", "DepthwiseConv2dNative", "MatMul"}
SIZES = [(224, 224), (64, 96)]
FAST = ("mobilenetv3small", "vgg16")


def profiled_flops(graph) -> dict[str, int]:
    """The profiler's float ops of ``graph`` per op type."""
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    info = tf.compat.v1.profiler.profile(graph=graph, run_meta=tf.compat.v1.RunMetadata(), cmd="scope",
                                         options=opts)
    per_type: dict[str, int] = {}
    stack = list(info.children)
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.float_ops:  # the op's own count (an op's scope may hold others: total_float_ops sums them)
            kind = graph.get_operation_by_name(node.name).type
            per_type[kind] = per_type.get(kind, 0) + node.float_ops
    return per_type


class _WithoutXla:
    """TensorFlow as Keras's conv sees it, but ``tf.function(jit_compile=True)`` leaves the function as
    it is: the grouped conv is traced inline."""

    def __getattr__(self, name):
        return getattr(tf, name)

    @staticmethod
    def function(*args, jit_compile=None, **kwargs):
        return (lambda f: f) if jit_compile else tf.function(*args, **kwargs)


def backbone_flops(constructor: str, height: int, width: int) -> dict[str, int]:
    """Build the model (``weights=None``, no top), trace its inference graph, profile it."""
    from keras.src.backend.tensorflow import nn

    model = getattr(keras.applications, constructor)(include_top=False, weights=None, input_shape=(height, width, 3))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nn, "tf", _WithoutXla())
        graph = tf.function(lambda x: model(x, training=False)).get_concrete_function(
            tf.TensorSpec([1, height, width, 3], tf.float32)).graph
    assert not any(op.type.endswith("PartitionedCall") for op in graph.get_operations()), "a call left unprofiled"
    return profiled_flops(graph)


def check_row(name: str) -> None:
    row = BACKBONES[name]
    for height, width in SIZES:
        per_type = backbone_flops(row.constructor, height, width)
        # No multiply-add op of another type (3D or transposed convs, batched MatMuls) goes uncounted.
        assert {k for k in per_type if "Conv" in k or "MatMul" in k} <= MULTIPLY_ADDS, (name, per_type)
        profiler = sum(per_type.get(k, 0) for k in MULTIPLY_ADDS)
        assert row.flops(height, width) == profiler, (name, height, width, row.flops(height, width) - profiler)
        keras.backend.clear_session()


@pytest.mark.parametrize("name", FAST)
def test_table_flops_equal_the_profilers(name):
    check_row(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in BACKBONES if n not in FAST])
def test_table_flops_equal_the_profilers_every_backbone(name):
    check_row(name)
