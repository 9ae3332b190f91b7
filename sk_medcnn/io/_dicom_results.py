"""Predictions written back as DICOM: a Comprehensive SR in the source's study."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .._version import __version__
from ..utils._files import atomic_path

__all__ = ["SKMEDCNN_CODING_SCHEME", "write_dicom_report"]

SKMEDCNN_CODING_SCHEME = "99SKMEDCNN"
"""The private coding scheme of the findings (the model's class labels)."""


def _concept(value: str, scheme: str, meaning: str) -> Any:
    from highdicom.sr import CodedConcept

    return CodedConcept(
        value=value[:16], scheme_designator=scheme, meaning=meaning[:64]
    )


def _check_report_values(
    label: Any, probabilities: Any, model_name: Any, series_number: Any
) -> None:
    """Refuse, naming the parameter, what the report could not hold honestly."""
    import math

    if not isinstance(probabilities, dict) or not probabilities:
        raise ValueError(
            "probabilities must be a non-empty dict of class label to probability; "
            f"got {probabilities!r}."
        )
    for key, value in probabilities.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not 0 <= value <= 1
        ):
            raise ValueError(
                f"probabilities[{key!r}] must be a number in [0, 1]; got {value!r}."
            )
    if str(label) not in probabilities:
        raise ValueError(
            f"label={label!r} is not a key of probabilities "
            f"({', '.join(map(repr, probabilities))})."
        )
    if not isinstance(model_name, str) or not model_name:
        raise TypeError(f"model_name must be a non-empty str; got {model_name!r}.")
    if isinstance(series_number, bool) or not isinstance(series_number, int):
        raise TypeError(f"series_number must be an int; got {series_number!r}.")
    if series_number < 1:
        raise ValueError(f"series_number must be >= 1; got {series_number}.")


def _import_highdicom() -> Any:
    """Import highdicom, or say how to install it."""
    try:
        import highdicom as hd
    except ImportError as error:
        raise ImportError(
            'DICOM results need highdicom: pip install "sk-medcnn[dicom]"'
        ) from error
    return hd


def _read_source(source: str | os.PathLike[str]) -> Any:
    """Read the source DICOM instance the report refers to."""
    import pydicom

    from ..exceptions import ImageReadError

    try:
        dataset = pydicom.dcmread(source)
        dataset.SOPClassUID  # noqa: B018  (required: the reference needs it)
        dataset.StudyInstanceUID  # noqa: B018
    except Exception as error:
        raise ImageReadError(
            f"'{source}' is not a DICOM instance a report can refer to: {error}",
            str(source),
        ) from error
    return dataset


def _report_items(
    dataset: Any,
    label: Any,
    probabilities: dict[str, float],
    model_name: str,
    model_version: str,
    in_distribution: bool | None,
    ood_reason: str,
) -> list[Any]:
    """Build the content items: finding, probabilities, algorithm, OOD, source."""
    from highdicom.sr import (
        CodeContentItem,
        ImageContentItem,
        NumContentItem,
        TextContentItem,
    )

    contains = "CONTAINS"
    scheme = SKMEDCNN_CODING_SCHEME
    unit = _concept("1", "UCUM", "no units")
    items = [
        CodeContentItem(
            name=_concept("121071", "DCM", "Finding"),
            value=_concept(str(label), scheme, str(label)),
            relationship_type=contains,
        ),
        NumContentItem(
            name=_concept("probability", scheme, "Probability of the finding"),
            value=float(probabilities[str(label)]),
            unit=unit,
            relationship_type=contains,
        ),
    ]
    for other, probability in probabilities.items():
        items.append(
            NumContentItem(
                name=_concept(f"p:{other}", scheme, f"Probability of {other}"),
                value=float(probability),
                unit=unit,
                relationship_type=contains,
            )
        )
    items += [
        TextContentItem(
            name=_concept("111001", "DCM", "Algorithm Name"),
            value=f"sk_medcnn {model_name}"[:1024],
            relationship_type=contains,
        ),
        TextContentItem(
            name=_concept("111003", "DCM", "Algorithm Version"),
            value=str(model_version),
            relationship_type=contains,
        ),
    ]
    if in_distribution is not None:
        items.append(
            TextContentItem(
                name=_concept("ood", scheme, "Unlike the training images"),
                value=("no" if in_distribution else f"yes: {ood_reason}")[:1024],
                relationship_type=contains,
            )
        )
    items.append(
        ImageContentItem(
            name=_concept("121112", "DCM", "Source of Measurement"),
            referenced_sop_class_uid=dataset.SOPClassUID,
            referenced_sop_instance_uid=dataset.SOPInstanceUID,
            relationship_type=contains,
        )
    )
    return items


def write_dicom_report(
    source: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    label: Any,
    probabilities: dict[str, float],
    model_name: str,
    model_version: str = __version__,
    in_distribution: bool | None = None,
    ood_reason: str = "",
    series_number: int = 900,
) -> Path:
    """Write one prediction as a DICOM Comprehensive SR referencing its source.

    The report is a new instance in a new series of the source's study: the
    patient and study attributes are copied from the source (by highdicom, from
    the evidence), nothing else of it. Its content tree holds the finding (the
    predicted class, coded in the private scheme ``99SKMEDCNN``), its
    probability and every class's, the algorithm identification (DCM 111001
    Algorithm Name and 111003 Algorithm Version, as in TID 4019), whether the
    image looked like the training images, and an image reference to the
    source instance, which is also listed as evidence.

    Parameters
    ----------
    source : str or path-like
        The DICOM file the prediction was made on.
    path : str or path-like
        The report to write (atomically); its folder must exist.
    label : label
        The predicted class.
    probabilities : dict of str to float
        Each class's probability, by label.
    model_name : str
        The model's name (e.g. its file's stem).
    model_version : str, default=sk_medcnn's version
        The algorithm version recorded.
    in_distribution : bool, optional
        The out-of-distribution verdict (``check_distribution``); omitted when
        None.
    ood_reason : str, default=""
        Why the image is unlike the training images, if it is.
    series_number : int, default=900
        The new series' number.

    Returns
    -------
    path : pathlib.Path

    Raises
    ------
    ValueError, TypeError
        If ``probabilities`` is empty or holds a value outside [0, 1], ``label``
        is not one of its keys, or ``model_name`` or ``series_number`` is not
        valid (the message names the parameter).
    ImportError
        If highdicom is not installed (``pip install "sk-medcnn[dicom]"``).
    sk_medcnn.exceptions.ImageReadError
        If ``source`` is not a readable DICOM file.
    """
    _check_report_values(label, probabilities, model_name, series_number)
    hd = _import_highdicom()
    dataset = _read_source(source)
    from highdicom.sr import ContainerContentItem, ContentSequence

    root = ContainerContentItem(
        name=_concept("126000", "DCM", "Imaging Measurement Report")
    )
    items = _report_items(
        dataset,
        label,
        probabilities,
        model_name,
        model_version,
        in_distribution,
        ood_reason,
    )
    root.ContentSequence = ContentSequence(items)
    report = hd.sr.ComprehensiveSR(
        evidence=[dataset],
        content=root,
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="sk_medcnn",
        series_description=f"sk_medcnn {model_name}"[:64],
    )
    target = Path(path)
    with atomic_path(target) as partial:
        report.save_as(partial, enforce_file_format=True)
    return target
