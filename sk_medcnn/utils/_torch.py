"""Former home of the torch glue, kept so that saved models still load.

The glue is split by concern into :mod:`._runtime` (devices, seeds, threads),
:mod:`._batches` (reading batches, the training dataset), :mod:`._network`
(:class:`ImageNetwork`, the input adapter) and :mod:`._inference` (prediction,
test-time augmentation, features). Models pickled before the split name
``sk_medcnn.utils._torch.ImageNetwork`` (and ``_Subsample``, the hook of a
channels-last network), so this module re-exports every name it used to
define. New code imports from the modules above; they never import this one.
"""

from __future__ import annotations

from ._batches import (
    FLOAT32_MAX,
    ArrayDataset,
    BatchAugmenter,
    RowReader,
    _file_rows,
    check_float32_range,
    collate_batch,
)
from ._inference import (
    TTA_TOKENS,
    View,
    _Captured,
    _inference_batches,
    _pooled,
    apply_view,
    embed_raw,
    predict_raw,
    predict_raw_with_features,
    tta_views,
)
from ._network import (
    MEMORY_FORMATS,
    PRECISIONS,
    ImageNetwork,
    _avoid_strided_pointwise_convolutions,
    _plain_strides,
    _standardise,
    _Subsample,
    _torch_memory_format,
    channel_statistics,
    channels_first,
    channels_last,
)
from ._runtime import (
    draw_seeds,
    resolve_device,
    seeded_torch,
    torch_threads,
    warn_cpu_fallback,
)

__all__ = [
    "FLOAT32_MAX",
    "MEMORY_FORMATS",
    "PRECISIONS",
    "TTA_TOKENS",
    "ArrayDataset",
    "BatchAugmenter",
    "ImageNetwork",
    "RowReader",
    "View",
    "_Captured",
    "_Subsample",
    "_avoid_strided_pointwise_convolutions",
    "_file_rows",
    "_inference_batches",
    "_plain_strides",
    "_pooled",
    "_standardise",
    "_torch_memory_format",
    "apply_view",
    "channel_statistics",
    "channels_first",
    "channels_last",
    "check_float32_range",
    "collate_batch",
    "draw_seeds",
    "embed_raw",
    "predict_raw",
    "predict_raw_with_features",
    "resolve_device",
    "seeded_torch",
    "torch_threads",
    "tta_views",
    "warn_cpu_fallback",
]
