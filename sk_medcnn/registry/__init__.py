"""Registry of CNN architectures, extensible by third-party packages.

Built-in architectures register themselves with :func:`register_architecture`.
Other distributions add theirs through the entry-point group
``sk_medcnn.architectures`` in their own ``pyproject.toml``::

    [project.entry-points."sk_medcnn.architectures"]
    mynet = "mypkg.nets:build_mynet"

Entry points are discovered lazily, at the first lookup of a name that is not
registered in-process; a plugin that fails to import breaks only the call that
asks for it.

Each architecture declares the spatial dimensions it builds networks for: 2 for
images ``(n, C, H, W)``, 3 for volumes ``(n, C, D, H, W)``. In-process
registrations pass ``spatial_dims=`` to :func:`register_architecture`; a plugin
sets the attribute ``spatial_dims`` on its factory (``build_x.spatial_dims =
(2, 3)``). Absent, it means 2-D images only.

A family also tells sk_medcnn how pretrained checkpoints map onto its modules
(:func:`register_weight_loader`, or the entry-point group
``sk_medcnn.weight_loaders``): which module is the output layer, which weight is
the first convolution, and how checkpoint keys are renamed.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

#: The entry-point group third-party packages use to provide architectures.
ENTRY_POINT_GROUP = "sk_medcnn.architectures"
#: The entry-point group third-party packages use to declare weight loaders.
WEIGHT_LOADER_GROUP = "sk_medcnn.weight_loaders"


#: ``factory(in_channels: int, n_outputs: int, image_shape: tuple[int, ...],
#: **params) -> torch.nn.Module``: builds an untrained module mapping a float
#: batch ``(n, in_channels, *image_shape)`` to ``(n, n_outputs)`` raw scores
#: (logits for a classifier, values for a regressor); ``image_shape`` is
#: ``(height, width)`` for images and ``(depth, height, width)`` for volumes,
#: so ``len(image_shape)`` is the number of spatial dimensions. A
#: ``Callable[..., ...]``
#: rather than a ``Protocol``, since factories add their own keyword-only
#: parameters, which a Protocol with ``**params`` does not admit.
ArchitectureFactory = Callable[..., nn.Module]

# The modules below read the names above from this package, so they come after
# them. The private names are re-exported for code that reads them here (the
# registries); a test replacing an entry-point function patches the module
# that calls it (._architectures or ._weights), not this package.
from ._architectures import (  # noqa: E402
    _ARCHITECTURES,  # noqa: F401
    _LOADED_PLUGINS,  # noqa: F401
    _SPATIAL_DIMS,  # noqa: F401
    SPATIAL_DIMS_ATTRIBUTE,  # noqa: F401
    architecture_spatial_dims,
    check_architecture_dims,
    get_architecture,
    list_architectures,
    register_architecture,
)
from ._plugins import (  # noqa: E402
    _plugin_entry_points,  # noqa: F401
    _weight_loader_entry_point,  # noqa: F401
)
from ._weights import (  # noqa: E402
    KeyMapping,  # noqa: F401
    WeightLoader,
    get_weight_loader,
    register_weight_loader,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "WEIGHT_LOADER_GROUP",
    "ArchitectureFactory",
    "WeightLoader",
    "architecture_spatial_dims",
    "check_architecture_dims",
    "get_architecture",
    "get_weight_loader",
    "list_architectures",
    "register_architecture",
    "register_weight_loader",
]
