"""Figures: overlays, explanation grids, reliability diagrams and ROC curves."""

from __future__ import annotations

import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

from sk_medcnn import MedicalCNNClassifier  # noqa: E402
from sk_medcnn.inspection import (  # noqa: E402
    plot_explanations,
    plot_overlay,
    plot_reliability_diagram,
    plot_roc,
)
from sk_medcnn.metrics import expected_calibration_error  # noqa: E402
from sk_medcnn.preprocessing import Resize  # noqa: E402
from sk_medcnn.utils._files import atomic_path  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def fitted(phantoms):
    X, y = phantoms
    return MedicalCNNClassifier(
        max_epochs=1, architecture_params={"width": 4}, random_state=0
    ).fit(X, y)


def _scores(n_samples=200, seed=0):
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 2, n_samples)
    return y, 1 / (1 + np.exp(-(2 * y - 1 + rng.randn(n_samples))))


def test_plot_overlay_draws_on_given_or_new_axes():
    image = np.random.RandomState(0).randint(0, 255, (12, 12), dtype=np.uint8)
    heat = np.zeros((12, 12))
    heat[4:8, 4:8] = 1.0
    ax = plot_overlay(image, heat)
    assert len(ax.images) == 2
    np.testing.assert_array_equal(ax.images[1].get_array(), heat)
    assert ax.images[1].get_alpha() == 0.4
    _, given = plt.subplots()
    assert plot_overlay(image[..., None], heat, ax=given, alpha=0.7) is given
    rgb = np.stack([image] * 3, axis=-1).astype(np.float32) * 4.0
    plot_overlay(rgb, heat, cmap="magma")


def test_an_all_zero_map_is_labelled_not_drawn():
    image = np.linspace(0, 1, 64).reshape(8, 8)
    blank = plot_overlay(image, np.zeros((8, 8)))
    drawn = plot_overlay(image, np.eye(8))
    assert len(blank.images) == 1  # the image alone, no heat map over it
    assert [text.get_text() for text in blank.texts] == ["no positive evidence"]
    assert len(drawn.images) == 2
    assert len(drawn.texts) == 0


def test_plot_explanations_titles_use_class_names(fitted, phantoms):
    X, y = phantoms
    names = {0: "no lesion", 1: "lesion"}
    for class_names in (names, ["no lesion", "lesion"]):
        figure = plot_explanations(fitted, X[:2], y_true=y[:2], class_names=class_names)
        titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
        assert all("lesion" in title for title in titles)
        assert not any(" 1," in title or "true 0" in title for title in titles)
    with pytest.raises(ValueError, match="class_names has no name"):
        plot_explanations(fitted, X[:2], class_names={0: "a"})
    with pytest.raises(ValueError, match="class_names has 3 names"):
        plot_explanations(fitted, X[:2], class_names=["a", "b", "c"])
    with pytest.raises(TypeError, match="class_names must be"):
        plot_explanations(fitted, X[:2], class_names="ab")


def test_plot_overlay_rejects_bad_input():
    with pytest.raises(ValueError, match="differ in height and width"):
        plot_overlay(np.zeros((8, 8)), np.zeros((6, 6)))
    with pytest.raises(ValueError, match="heatmap must be"):
        plot_overlay(np.zeros((8, 8)), np.zeros((1, 8, 8)))
    with pytest.raises(ValueError, match=r"alpha == 1\.5"):
        plot_overlay(np.zeros((8, 8)), np.zeros((8, 8)), alpha=1.5)
    with pytest.raises(ValueError, match="image must be"):
        plot_overlay(np.zeros((8, 8, 2)), np.zeros((8, 8)))


@pytest.mark.parametrize("method", ["grad_cam", "hires_cam", "smoothgrad"])
def test_plot_explanations_is_a_figure_one_panel_per_image(fitted, phantoms, method):
    X, y = phantoms
    params = {"n_samples": 2, "random_state": 0} if method == "smoothgrad" else None
    figure = plot_explanations(
        fitted, X[:5], method=method, y_true=y[:5], n_columns=3, method_params=params
    )
    assert isinstance(figure, Figure)
    panels = [ax for ax in figure.axes if ax.images]
    assert len(panels) == 5
    assert len(figure.axes) == 6  # 2 rows of 3; the last one is blank
    assert panels[0].get_title().startswith(f"true {y[0]}, pred. ")


def test_plot_explanations_through_a_pipeline_and_saved(fitted, phantoms, tmp_path):
    X, y = phantoms
    pipe = make_pipeline(Resize(20), MedicalCNNClassifier(max_epochs=1)).fit(X, y)
    figure = plot_explanations(pipe, X[:2], target=1)
    # drawn over the images as given: 16 x 16
    assert figure.axes[0].images[0].get_array().shape == (16, 16)
    assert "class 1" in figure.get_suptitle()
    target = tmp_path / "explanations.png"
    with atomic_path(target) as path:
        figure.savefig(path)
    assert target.read_bytes().startswith(b"\x89PNG")


def test_plot_explanations_on_file_paths_draws_the_images_read(
    fitted, phantoms, tmp_path
):
    # a bare classifier reads paths lazily (ImageFiles); the panels used to
    # index that source one image at a time, reading a path's characters
    import imageio.v3 as iio

    X, y = phantoms
    paths = []
    for index, image in enumerate(X[:3]):
        paths.append(str(tmp_path / f"{index}.png"))
        iio.imwrite(paths[-1], image)
    from_paths = plot_explanations(fitted, paths, y_true=y[:3])
    from_arrays = plot_explanations(fitted, X[:3], y_true=y[:3])
    drawn = [ax for ax in from_paths.axes if ax.images]
    expected = [ax for ax in from_arrays.axes if ax.images]
    assert len(drawn) == 3
    for ax, reference in zip(drawn, expected, strict=True):
        np.testing.assert_array_equal(
            ax.images[0].get_array(), reference.images[0].get_array()
        )
        assert ax.get_title() == reference.get_title()


def test_plot_explanations_rejects_bad_input(fitted, phantoms):
    X, y = phantoms
    with pytest.raises(ValueError, match="method must be one of"):
        plot_explanations(fitted, X[:2], method="lime")
    with pytest.raises(ValueError, match="are for saliency_map"):
        plot_explanations(fitted, X[:2], method_params={"n_samples": 3})
    with pytest.raises(ValueError, match="y_true has 3 labels but X holds 2"):
        plot_explanations(fitted, X[:2], y_true=y[:3])


def test_plot_reliability_diagram():
    y, score = _scores()
    ax = plot_reliability_diagram(y, score, n_bins=5, name="CNN")
    ece = expected_calibration_error(y, score, n_bins=5)
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert f"CNN (ECE = {ece:.3f})" in labels
    assert ax.get_xlabel().startswith("predicted probability")
    proba = np.column_stack([1 - score, score])
    ax = plot_reliability_diagram(y, proba, strategy="quantile")
    assert ax.get_ylabel() == "accuracy"
    with pytest.raises(ValueError, match="probabilities in"):
        plot_reliability_diagram(y, score * 3)


def test_plot_roc_marks_the_operating_point():
    y, score = _scores()
    ax = plot_roc(y, score, threshold=0.5, name="CNN")
    predicted = score >= 0.5
    sensitivity = predicted[y == 1].mean()
    specificity = (~predicted[y == 0]).mean()
    point = ax.lines[-1]
    np.testing.assert_allclose(point.get_xdata(), [1 - specificity])
    np.testing.assert_allclose(point.get_ydata(), [sensitivity])
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert any(label.startswith("CNN (AUC = ") for label in labels)
    assert f"sensitivity {sensitivity:.2f}, specificity {specificity:.2f}" in labels[-1]
    assert len(plot_roc(y, score).lines) == 2  # chance line and curve only
    with pytest.raises(ValueError, match="needs both classes"):
        plot_roc(np.zeros(5), np.linspace(0, 1, 5))
    with pytest.raises(TypeError, match="threshold must be a real number"):
        plot_roc(y, score, threshold="high")


def test_missing_matplotlib_names_the_extra(monkeypatch, fitted, phantoms):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install 'sk-medcnn\[plot\]'"):
        plot_overlay(np.zeros((4, 4)), np.zeros((4, 4)))
    with pytest.raises(ImportError, match="needs matplotlib"):
        plot_explanations(fitted, phantoms[0][:1])


def test_matplotlib_is_imported_only_inside_functions():
    # "import sk_medcnn" must not import matplotlib: no module-level import of it
    import ast
    from pathlib import Path

    import sk_medcnn.inspection

    for path in Path(sk_medcnn.inspection.__file__).parent.glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [alias.name for alias in node.names]
                module = getattr(node, "module", None) or ""
                assert not any(
                    name.startswith("matplotlib") for name in [*names, module]
                ), path.name
