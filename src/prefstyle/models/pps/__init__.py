"""What the three PPS models (CVPR 2026) share at inference: :mod:`~prefstyle.models.usd`,
:mod:`~prefstyle.models.upe` and :mod:`~prefstyle.models.exemplar`.

* :mod:`.objective`: the pairwise objective ``w·L(Î, I_p) + (1 − w)·L(Î, I_n)`` and its ``w``
  schedule (also used by USD's inference-time adaptation);
* :mod:`.thumbs`: square thumbnails (the same preprocessing in training and inference);
* :mod:`.backbone`: the frozen feature extractor (EfficientNet-Lite0 packaged, DINOv2 from local
  weights);
* :mod:`.modules`: the small trainable modules (style encoder, basis LUTs, LUT decoder, feature
  scaler) and the LUT rendering;
* :mod:`.guided`: edge-aware upsampling of a coarse edit (USD);
* :mod:`.references`: :class:`~prefstyle.models.base.Reference` objects from a dataset's judgments;
* :mod:`.net_model`: the weights fingerprint every profile records.

Their training (the pair bank, batches, the tasks, periodic validation) lives with every other
model's in :mod:`prefstyle.train.tasks`. Images are ``(B,3,H,W)`` float32 sRGB in [0,1] throughout.
"""

from prefstyle.models.pps.backbone import FrozenBackbone, embed_images
from prefstyle.models.pps.guided import guided_upsample
from prefstyle.models.pps.modules import (
    BasisLUT,
    FeatureScaler,
    LUTDecoder,
    StyleEncoder,
    Unregistered,
    apply_luts,
    colour_stats,
    render_lut_model,
)
from prefstyle.models.pps.net_model import NetModelMixin, weights_fingerprint
from prefstyle.models.pps.objective import (
    LOSSES,
    W_SCHEDULES,
    image_loss,
    pairwise_loss,
    pps_weight,
)
from prefstyle.models.pps.references import references_from_judgments
from prefstyle.models.pps.thumbs import center_square, square_thumbs

__all__ = [
    "LOSSES",
    "W_SCHEDULES",
    "BasisLUT",
    "FeatureScaler",
    "FrozenBackbone",
    "LUTDecoder",
    "NetModelMixin",
    "StyleEncoder",
    "Unregistered",
    "apply_luts",
    "center_square",
    "colour_stats",
    "embed_images",
    "guided_upsample",
    "image_loss",
    "pairwise_loss",
    "pps_weight",
    "references_from_judgments",
    "render_lut_model",
    "square_thumbs",
    "weights_fingerprint",
]
