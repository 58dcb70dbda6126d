"""Overlap-tile prediction for images of any size, and cropping labels to a model's output.

A valid-padding U-Net maps ``n`` input pixels to ``n - m`` output pixels on every axis (``m``, the
margin, is 184 for the 2015 U-Net: 572 -> 388). Ronneberger et al. predict a large image tile by
tile and supply the missing context at the image border by mirroring the image (their Fig. 2).
``predict_tiled`` does that for any image size, 1D, 2D or 3D:

* the image is mirror-padded by the margin: ``m // 2`` before, the rest after, because the
  planner puts the odd pixel of every centre crop at the end, so that is where the output sits;
* tiles of a legal input size are cut at offsets that are multiples of the network's period
  ``P`` (the product of its down-sampling factors), so that pooling sees the same grid in every
  tile; for a network with no zero padding inside (valid padding) the stitched result then
  equals one pass over the whole padded image, up to float rounding;
* a network that zero-pads inside (``padding: same``) sees the tile border in every tile, so its
  tiles overlap and are blended with a Gaussian weight (as nnU-Net does); where one legal tile
  covers the whole image it is predicted in one pass.

Shape contract (channels last everywhere, ``ndim`` = 1, 2 or 3 spatial axes):

* image: ``(*spatial, C)`` or ``(B, *spatial, C)``; each head's result has the same leading
  axes, the image's own spatial size, and the head's channels: ``(*spatial, K)`` /
  ``(B, *spatial, K)``. A head at ``1/r`` resolution (deep supervision) gets ``ceil(size / r)``
  pixels per axis, its pixel ``i`` covering image pixels ``r*i .. r*i + r - 1``.
* labels for ``crop_to_output``: ``(..., *spatial, C)`` (any leading axes, e.g. a batch), or
  ``(..., *spatial)`` with ``channel_axis=False``.

The planning part (geometry, layouts, mirror padding, cropping) is pure Python and NumPy; Keras
is imported only by the functions that load or run a model.
"""

from archgen.tiling.geometry import (
           Geometry,
           Head,
           TilingError,
           crop_to_output,
           output_margins,
           plan_geometry,
)
from archgen.tiling.layout import (
           DEFAULT_MAX_TILE,
           legal_at_least,
           mirror_pad,
           reflect_indices,
)
from archgen.tiling.model import (
           load_model,
           model_geometry,
           output_names,
           plan_for_model,
           plan_for_shape,
)
from archgen.tiling.predict import (
           ApproximateTilingWarning,
           check_finite,
           check_image,
           check_options,
           predict_tiled,
)

__all__ = ["ApproximateTilingWarning", "DEFAULT_MAX_TILE", "Geometry", "Head", "TilingError", "check_finite",
           "check_image", "check_options", "crop_to_output", "legal_at_least", "load_model", "mirror_pad",
           "model_geometry", "output_margins", "output_names", "plan_for_model", "plan_for_shape", "plan_geometry",
           "predict_tiled", "reflect_indices"]
