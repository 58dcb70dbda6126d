"""archgen's own Keras layers against PyTorch's definitions, and a model holding them saved and
loaded back through archgen's checked loader."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
from archgen.emit.own_layers import DepthwiseConvTranspose, GlobalResponseNorm, LinearUpSampling  # noqa: E402


@pytest.mark.parametrize("ndim, kernel, stride", [(1, 3, 3), (2, 5, 2), (2, 4, 2), (3, 3, 2), (3, 1, 2)])
def test_depthwise_conv_transpose_is_pytorchs_grouped_conv_transpose(ndim, kernel, stride):
    channels, sizes = 3, [5, 4, 3][:ndim]
    x = np.random.default_rng(0).normal(size=(2, channels, *sizes)).astype("float32")
    peer = getattr(torch.nn, f"ConvTranspose{ndim}d")(channels, channels, kernel, stride=stride, groups=channels)
    with torch.no_grad():
        expected = np.moveaxis(peer(torch.from_numpy(x)).numpy(), 1, -1)
    layer = DepthwiseConvTranspose((kernel,) * ndim, (stride,) * ndim)
    layer.build((2, *sizes, channels))
    w = peer.weight.detach().numpy()  # (channels, 1, *kernel)
    layer.set_weights([np.transpose(w, (*range(2, w.ndim), 1, 0)), peer.bias.detach().numpy()])
    y = np.asarray(layer(np.moveaxis(x, 1, -1)))
    assert y.shape == expected.shape == layer.compute_output_shape((2, *sizes, channels))
    np.testing.assert_allclose(y, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("ndim, factor", [(1, 2), (1, 3), (2, 2), (3, 2), (3, 3)])
def test_linear_up_sampling_is_pytorchs_interpolate_without_aligned_corners(ndim, factor):
    sizes = [5, 4, 3][:ndim]
    x = np.random.default_rng(1).normal(size=(2, 3, *sizes)).astype("float32")
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[ndim]
    expected = torch.nn.functional.interpolate(torch.from_numpy(x), scale_factor=factor, mode=mode,
                                               align_corners=False).numpy()
    y = np.asarray(LinearUpSampling((factor,) * ndim)(np.moveaxis(x, 1, -1)))
    np.testing.assert_allclose(y, np.moveaxis(expected, 1, -1), atol=1e-5, rtol=0)


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_global_response_norm_is_the_convnext_v2_formula(ndim):
    """gamma * (x * n) + beta + x, n = each channel's L2 norm over the map / its mean over channels."""
    x = np.random.default_rng(4).normal(size=(2, *[5, 4, 3][:ndim], 6)).astype("float32")
    layer = GlobalResponseNorm()
    layer.build(x.shape)
    gamma, beta = np.random.default_rng(5).normal(size=(2, 6)).astype("float32")
    layer.set_weights([gamma, beta])
    gx = np.sqrt((x.astype("float64") ** 2).sum(axis=tuple(range(1, ndim + 1)), keepdims=True))
    nx = gx / (gx.mean(axis=-1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(np.asarray(layer(x)), gamma * (x * nx) + beta + x, atol=1e-5, rtol=0)


def test_a_model_with_them_saves_and_loads_through_the_checked_loader(tmp_path):
    """A 3D convnext network with up blocks and linear up-sampling: the saved file names only layer
    classes archgen allows, and loads with the same outputs."""
    from archgen.emit import emit_model
    from archgen.model_file import load_model
    from archgen.planner import make_plan
    from archgen.config import validate

    config = {"input": {"shape": [8, 8, 8, 1]},
              "encoder": {"stem": {"kernel_size": 1, "conv_only": True},
                          "block": {"type": "convnext", "norm": "instance"}, "downsample": {"type": "block"},
                          "stages": [{"filters": 2, "stride": 1}, {"filters": 4, "stride": 2},
                                     {"filters": 4, "stride": 2}]},
              "decoder": {"align": "none", "merge": {"type": "add"}, "upsample": {"type": "block"},
                          "stages": [{"filters": 2}, {"filters": 4}]},
              "heads": [{"name": "logits", "filters": 2}]}
    linear = {**config, "decoder": {**config["decoder"], "stages": [{"filters": 4}, {"filters": 4}],
                                    "upsample": {"type": "interpolate", "interpolation": "linear"}}}
    grn = {**config, "encoder": {**config["encoder"], "block": {**config["encoder"]["block"], "global_resp_norm": True}}}
    for data, own in ((config, "DepthwiseConvTranspose"), (linear, "LinearUpSampling"), (grn, "GlobalResponseNorm")):
        model = emit_model(make_plan(validate(data)))
        assert own in {type(layer).__name__ for layer in model.layers}
        for layer in model.layers:  # away from the zeros a GRN starts at, which make it the identity
            if isinstance(layer, GlobalResponseNorm):
                layer.set_weights([np.random.default_rng(3).normal(size=w.shape) for w in layer.get_weights()])
        path = tmp_path / "model.keras"
        model.save(path)
        x = np.random.default_rng(2).normal(size=(1, 8, 8, 8, 1)).astype("float32")
        np.testing.assert_allclose(np.asarray(load_model(path)(x)), np.asarray(model(x)), atol=1e-6, rtol=0)


def test_linear_up_sampling_of_a_two_row_map_in_a_compiled_predict():
    """TensorFlow's graph optimiser mis-sized the sliced-and-joined neighbours of a two-row map after
    a 1x1 conv (predict failed with 'Incompatible shapes' where a direct call did not): the rows are
    gathered by fixed indices, and predict equals the direct call."""
    import archgen

    overrides = ["input.shape=[16,16,16,1]", "encoder.block.norm=batch"]  # the deepest map is 2x2x2
    model = archgen.build_model("conf/peers/monai_segresnet_3d.yaml", overrides)
    x = np.random.default_rng(0).random((1, 16, 16, 16, 1)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), np.asarray(model(x)), atol=1e-5)
