"""Helpers for comparing archgen with the PyTorch networks it reproduces: counts, shapes, weights."""

from __future__ import annotations

import numpy as np

from archgen.planner import make_plan
from archgen.config import load_spec
from tests.conftest import CONF

PEERS = CONF / "peers"


def plan_of(name: str, shape: list[int] | None = None, overrides: list[str] = ()):
    given = [f"input.shape=[{','.join(map(str, shape))}]"] if shape else []
    return make_plan(load_spec(PEERS / f"{name}.yaml", [*given, *overrides]))


def torch_counts(module) -> tuple[int, int]:
    """(trainable parameters, buffers such as batch norm's running statistics)."""
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    buffers = sum(b.numel() for name, b in module.named_buffers() if not name.endswith("num_batches_tracked"))
    return trainable, buffers


def keras_counts(model) -> tuple[int, int]:
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return trainable, model.count_params() - trainable


def channels_last(array: np.ndarray) -> np.ndarray:
    return np.moveaxis(array, 1, -1)


def copy_weights(model, pairs, copied=()) -> None:
    """Copy PyTorch modules' weights into the Keras layers of the same role.

    ``pairs``: (Keras layer name, torch module); ``copied``: layers whose weights the caller set itself. Conv weights (out, in, *k) become (*k, in, out);
    transposed conv weights (in, out, *k) become (*k, out, in); norms copy scale and shift.
    """
    import torch

    done = set(copied)
    for name, module in pairs:
        layer = model.get_layer(name)
        if isinstance(module, torch.nn.modules.conv._ConvTransposeNd):
            w = module.weight.detach().numpy()
            weights = [np.transpose(w, (*range(2, w.ndim), 1, 0))]
        elif isinstance(module, torch.nn.modules.conv._ConvNd):
            w = module.weight.detach().numpy()
            weights = [np.transpose(w, (*range(2, w.ndim), 1, 0))]
        elif isinstance(module, torch.nn.PReLU):
            weights = [module.weight.detach().numpy().reshape(layer.get_weights()[0].shape)]
            layer.set_weights(weights)
            done.add(name)
            continue
        else:  # a norm: scale, shift (and running statistics for batch norm)
            weights = [module.weight.detach().numpy()]
        if getattr(module, "bias", None) is not None:
            weights.append(module.bias.detach().numpy())
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            weights += [module.running_mean.numpy(), module.running_var.numpy()]
        weights[0] = _as_kernel_of(layer, weights[0])
        layer.set_weights(weights)
        done.add(name)
    trainable = {w.path.split("/")[0] for w in model.weights}
    missing = trainable - done
    assert not missing, f"layers with weights that got none: {sorted(missing)}"


def _as_kernel_of(layer, w: np.ndarray) -> np.ndarray:
    """``w`` in the layout of ``layer``'s first weight where the two differ only in arrangement: a
    1x1 ConvTranspose copied into a Keras conv swaps in and out (the same map at stride 1); a
    depthwise conv's (*k, 1, C) is DepthwiseConv2D's (*k, C, 1)."""
    shape = tuple(layer.get_weights()[0].shape)
    if w.shape == shape or w.ndim < 2:
        return w
    assert w.shape[:-2] + w.shape[-2:][::-1] == shape, (layer.name, w.shape, shape)
    return np.swapaxes(w, -1, -2)


def randomize(module, seed: int = 0) -> None:
    """Non-trivial norm scales and biases, so a copy that mixed them up would show."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias") or p.ndim == 1:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1 + (1.0 if name.endswith("weight") else 0.0))


def compare_outputs(model, net, shape: tuple[int, ...], outputs: list, tol: float = 1e-4, seed: int = 0) -> None:
    """Run both on one random input (batch 2) and require the outputs within ``tol``."""
    import torch

    x = np.random.default_rng(seed).normal(size=(2, *shape)).astype("float32")  # channels first
    with torch.no_grad():
        ys_torch = outputs(net, torch.from_numpy(x))
    ys = model(channels_last(x))
    ys = ys if isinstance(ys, (list, tuple)) else [ys]
    assert len(ys) == len(ys_torch)
    for y, yt in zip(ys, ys_torch):
        yt = channels_last(yt.numpy())
        assert y.shape == yt.shape
        scale = max(1.0, float(np.abs(yt).max()))
        np.testing.assert_allclose(np.asarray(y), yt, atol=tol * scale, rtol=0)


def nnunet_decoder_pairs(net, n_stages: int) -> list:
    """archgen's layer for each module of dynamic-network-architectures' UNetDecoder (deepest first)."""
    out = []
    for s in range(n_stages - 1):
        level = n_stages - 1 - s
        out.append((f"dec{level}_up", net.decoder.transpconvs[s]))
        for c, block in enumerate(net.decoder.stages[s].convs):
            out += [(f"dec{level}_conv{c + 1}", block.conv), (f"dec{level}_norm{c + 1}", block.norm)]
        out.append(("logits" if level == 1 else f"logits_dec{level}", net.decoder.seg_layers[s]))
    return out
