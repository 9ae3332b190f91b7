"""Save and load fitted models in the safe ``.skmed`` format, which holds no code.

A ``.skmed`` file is a zip archive of

- ``model.json``: a versioned JSON document with the versions of sk_medcnn, torch,
  scikit-learn and numpy that wrote it, the SHA-256 of every other member, and the
  object tree: for each estimator its class name (from an allow-list), its
  parameters and its fitted attributes, with numeric arrays referenced into
- ``arrays.safetensors``: the fitted numeric arrays (``classes_``, statistics, ...);
- ``network-<n>.safetensors``: the weights of each network, as plain tensors.

Loading parses JSON and safetensors only. It never unpickles, never imports a
module named by the file, and looks every class up in a fixed allow-list of
sk_medcnn and scikit-learn classes (extended only by classes the caller passes in
``trusted``); networks are rebuilt from the architecture registry by name and the
weights loaded into them strictly. Every problem with a file raises one
:class:`~sk_medcnn.exceptions.ModelFileError` (a ``ValueError``) naming it.

Why not ``skops.io``: it stores a fitted estimator's ``__dict__`` recursively, and
skorch's ``NeuralNet`` keeps its module, optimizer and criterion as a *pickled*
byte string (``__cuda_dependent_attributes__``) which skorch's ``__setstate__``
unpickles. Loading an sk_medcnn model with ``skops.io.load`` therefore runs
``pickle`` on bytes from the file, whatever types are trusted; a file that
replaces those bytes runs arbitrary code. Its ``trusted=`` list also names 17
internal types (``functools.partial``, ``builtins.print``, skorch callbacks, ...)
that change with any refactoring. We keep skops' rule instead: an explicit list of
trusted classes, never ``trusted=True``.

The package is split by concern: ``_format`` (the format's members, schema,
limits and recorded versions), ``_allowlist`` (the trusted types), ``_archive``
(the zip container, written and read within the limits), ``_writer``
(:func:`save_model`), ``_reader`` (the object tree, decoded and checked node by
node), ``_fitted`` (the fitted state a saved or loaded model must have) and
``_loader`` (:func:`load_model`, its safety net and the blank prediction).
"""

# The private names (``X as X``) stay importable from here, as tests and
# benchmarks import them; to change a limit in a test, patch it in the submodule
# that reads it (``_archive``, ``_loader``): patching it here changes nothing.
from ._allowlist import _ALLOWED_CLASS_REFERENCES as _ALLOWED_CLASS_REFERENCES
from ._allowlist import _ALLOWED_ESTIMATORS as _ALLOWED_ESTIMATORS
from ._format import _MAX_DOCUMENT_VALUES as _MAX_DOCUMENT_VALUES
from ._format import _MAX_TOTAL_BYTES as _MAX_TOTAL_BYTES
from ._format import FORMAT_VERSION, ModelVersionWarning
from ._loader import _check_network_on_meta as _check_network_on_meta
from ._loader import load_model
from ._writer import save_model

__all__ = [
    "FORMAT_VERSION",
    "ModelVersionWarning",
    "load_model",
    "save_model",
]
