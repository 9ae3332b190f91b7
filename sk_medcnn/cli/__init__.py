"""The ``sk-medcnn`` command line: train, evaluate, predict, explain, benchmark, info.

Every command reads an image folder (one subfolder per class) or a MedMNIST
``.npz`` file, and writes its outputs atomically (a temporary file renamed
into place), so an error or Ctrl-C never leaves a half-written model, report
or table. Errors print one line naming the file or the option, without a
traceback unless ``--verbose`` is given.

Exit codes: 0 success, 1 an error in the data, a file or a model, 2 a usage
error (unknown option, bad value), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import logging

# Every name below was importable from the single module ``sk_medcnn.cli``; it
# still is. Patch a function where it is looked up: in the submodule that calls it.
from ._common import EXIT_ERROR as EXIT_ERROR
from ._common import EXIT_INTERRUPTED as EXIT_INTERRUPTED
from ._common import EXIT_OK as EXIT_OK
from ._common import EXIT_USAGE as EXIT_USAGE
from ._common import NONE as NONE
from ._common import CommandError as CommandError
from ._common import UsageError as UsageError
from ._common import _check_device as _check_device
from ._common import _check_output as _check_output
from ._common import _check_output_file as _check_output_file
from ._common import _count as _count
from ._common import _describe_missing as _describe_missing
from ._common import _none as _none
from ._common import _shown as _shown
from ._common import _warn as _warn
from ._data import _collect_files as _collect_files
from ._data import _has_split as _has_split
from ._data import _images_for as _images_for
from ._data import _is_npz as _is_npz
from ._data import _is_series_folder as _is_series_folder
from ._data import _volumes_for as _volumes_for
from ._data import load_data as load_data
from ._deploy import command_export as command_export
from ._deploy import command_serve as command_serve
from ._evaluate import _relabel as _relabel
from ._evaluate import command_evaluate as command_evaluate
from ._explain import METHOD_NAMES as METHOD_NAMES
from ._explain import _class_label as _class_label
from ._explain import command_explain as command_explain
from ._info import _installed as _installed
from ._info import command_info as command_info
from ._main import _console as _console
from ._main import main as main
from ._models import MODEL_SUFFIXES as MODEL_SUFFIXES
from ._models import _check_model_suffix as _check_model_suffix
from ._models import _final_estimator as _final_estimator
from ._models import _reads_paths as _reads_paths
from ._models import _takes_volumes as _takes_volumes
from ._models import load_any_model as load_any_model
from ._models import save_any_model as save_any_model
from ._parser import _check_spelling as _check_spelling
from ._parser import _DefaultsFormatter as _DefaultsFormatter
from ._parser import _DeprecatedAlias as _DeprecatedAlias
from ._parser import _estimator_defaults as _estimator_defaults
from ._parser import _options as _options
from ._parser import _positive_float as _positive_float
from ._parser import _positive_int as _positive_int
from ._parser import _probability as _probability
from ._parser import _subcommand_parser as _subcommand_parser
from ._parser import _VersionAction as _VersionAction
from ._parser import build_parser as build_parser
from ._predict import _write_dicom_reports as _write_dicom_reports
from ._predict import command_predict as command_predict
from ._reports import _distribution_summary as _distribution_summary
from ._reports import _file_stem as _file_stem
from ._reports import _json_default as _json_default
from ._reports import evaluation as evaluation
from ._reports import write_json as write_json
from ._train import _OPTION_OF as _OPTION_OF
from ._train import AUGMENTERS as AUGMENTERS
from ._train import _augmentation as _augmentation
from ._train import _check_image_size as _check_image_size
from ._train import _check_options as _check_options
from ._train import command_benchmark as command_benchmark
from ._train import command_train as command_train

__all__ = ["main"]

logger = logging.getLogger("sk_medcnn.cli")
