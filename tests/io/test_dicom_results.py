"""Predictions written back as DICOM structured reports, read back with pydicom."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

pydicom = pytest.importorskip("pydicom")
pytest.importorskip("highdicom")
from pydicom.data import get_testdata_file  # noqa: E402

from sk_medcnn.exceptions import ImageReadError  # noqa: E402
from sk_medcnn.io import write_dicom_report  # noqa: E402

SR_STORAGE = "1.2.840.10008.5.1.4.1.1.88.33"  # Comprehensive SR


def _items(report):
    return {
        item.ConceptNameCodeSequence[0].CodeMeaning: item
        for item in report.ContentSequence
    }


def test_the_report_refers_to_its_source_in_the_same_study(tmp_path):
    source_path = get_testdata_file("CT_small.dcm")
    path = write_dicom_report(
        source_path,
        tmp_path / "sr.dcm",
        label="pneumonia",
        probabilities={"normal": 0.2, "pneumonia": 0.8},
        model_name="chest",
        model_version="1.2",
        in_distribution=False,
        ood_reason="out-of-distribution score 136 above the threshold 10.8",
    )
    report, source = pydicom.dcmread(path), pydicom.dcmread(source_path)
    assert report.SOPClassUID == SR_STORAGE
    assert report.Modality == "SR"
    # the same patient and study, a new series and instance
    assert report.StudyInstanceUID == source.StudyInstanceUID
    assert report.PatientID == source.PatientID
    assert report.PatientName == source.PatientName
    assert report.SeriesInstanceUID != source.SeriesInstanceUID
    assert report.SOPInstanceUID != source.SOPInstanceUID
    evidence = report.CurrentRequestedProcedureEvidenceSequence[0]
    referenced = evidence.ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert referenced.ReferencedSOPInstanceUID == source.SOPInstanceUID
    items = _items(report)
    finding = items["Finding"].ConceptCodeSequence[0]
    assert (finding.CodeValue, finding.CodingSchemeDesignator) == (
        "pneumonia",
        "99SKMEDCNN",
    )
    assert float(
        items["Probability of the finding"].MeasuredValueSequence[0].NumericValue
    ) == pytest.approx(0.8)
    assert float(
        items["Probability of normal"].MeasuredValueSequence[0].NumericValue
    ) == pytest.approx(0.2)
    assert items["Algorithm Name"].TextValue == "sk_medcnn chest"
    assert items["Algorithm Version"].TextValue == "1.2"
    assert items["Unlike the training images"].TextValue.startswith("yes: ")
    image = items["Source of Measurement"].ReferencedSOPSequence[0]
    assert image.ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert image.ReferencedSOPClassUID == source.SOPClassUID
    assert "PixelData" not in report  # nothing else of the source


def test_a_file_that_is_not_dicom_is_named(tmp_path):
    bad = tmp_path / "scan.dcm"
    bad.write_bytes(b"not dicom")
    with pytest.raises(ImageReadError, match=r"scan\.dcm"):
        write_dicom_report(
            bad, tmp_path / "sr.dcm", label=1, probabilities={"1": 1.0}, model_name="m"
        )
    assert not (tmp_path / "sr.dcm").exists()


def test_predict_writes_a_report_per_dicom_input(tmp_path):
    from sk_medcnn import MedicalCNNClassifier, save_model
    from sk_medcnn.cli import main
    from sk_medcnn.datasets import make_lesion_phantoms

    X, y = make_lesion_phantoms(64, image_size=16, random_state=0)
    save_model(
        MedicalCNNClassifier(max_epochs=1, random_state=0).fit(X, y),
        tmp_path / "m.skmed",
    )
    ct = get_testdata_file("CT_small.dcm")
    mr = get_testdata_file("MR_small.dcm")
    argv = ["predict", str(tmp_path / "m.skmed"), ct, mr]
    argv += ["--output", str(tmp_path / "p.csv"), "--dicom-out", str(tmp_path / "sr")]
    assert main(argv) == 0
    reports = sorted((tmp_path / "sr").iterdir())
    assert [p.name for p in reports] == ["0000_CT_small_sr.dcm", "0001_MR_small_sr.dcm"]
    with open(tmp_path / "p.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row, report_path, source in zip(rows, reports, (ct, mr), strict=True):
        report = pydicom.dcmread(report_path)
        items = _items(report)
        assert items["Finding"].ConceptCodeSequence[0].CodeValue == row["label"]
        probability = items["Probability of the finding"].MeasuredValueSequence[0]
        assert float(probability.NumericValue) == pytest.approx(
            float(row[f"proba_{row['label']}"]), abs=1e-6
        )
        assert report.StudyInstanceUID == pydicom.dcmread(source).StudyInstanceUID
        assert Path(report_path).stat().st_size > 0


@pytest.mark.parametrize(
    ("options", "error", "needle"),
    [
        ({"probabilities": {}}, ValueError, "probabilities must be a non-empty"),
        ({"probabilities": {"a": float("nan")}}, ValueError, r"probabilities\['a'\]"),
        ({"probabilities": {"a": 1.5}}, ValueError, r"in \[0, 1\]"),
        ({"label": "z"}, ValueError, "label='z' is not a key"),
        ({"model_name": 3}, TypeError, "model_name must be"),
        ({"series_number": 0}, ValueError, "series_number must be >= 1"),
        ({"series_number": "9"}, TypeError, "series_number must be an int"),
    ],
)
def test_bad_values_are_named_and_nothing_is_written(tmp_path, options, error, needle):
    values = {"label": "a", "probabilities": {"a": 1.0}, "model_name": "m"}
    with pytest.raises(error, match=needle):
        write_dicom_report(
            get_testdata_file("CT_small.dcm"),
            tmp_path / "sr.dcm",
            **{**values, **options},
        )
    assert list(tmp_path.iterdir()) == []
