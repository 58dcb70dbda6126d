"""The validation picture: a PNG any reader opens, three panels of the right size in 1D, 2D and 3D."""

from __future__ import annotations

import numpy as np
import pytest

from archgen.train import picture


@pytest.mark.parametrize(("ndim", "shape", "size"), [(2, (32, 48), (3 * 4 * 48 + 8, 128)),
                                                     (3, (6, 20, 30), (3 * 7 * 30 + 8, 140)),
                                                     (1, (4000,), (3 * 4000 + 8, 16))])
def test_three_panels_in_a_png(ndim, shape, size):
    import io

    from PIL import Image

    rng = np.random.default_rng(0)
    image = rng.normal(size=(*shape, 1)).astype(np.float32)
    labels = rng.integers(0, 3, shape)
    rgb = picture.panels(image, labels, labels, ndim)
    with Image.open(io.BytesIO(picture.png_bytes(rgb))) as png:
        assert png.size == size and png.mode == "RGB"
        assert np.array_equal(np.asarray(png), rgb)
