"""Every Python code block of the documentation runs as written.

Each page's ``.. code-block:: python`` blocks (and ``::`` literal blocks that are
Python) run in order in one namespace, as a reader pastes them, in a fresh
folder beside ``../shared`` so the data path the pages use resolves. A page that
reads the shared data skips, with the reason, when the file is absent (as on a
user's machine).

To stay fast the code runs with tiny settings, patched in around it rather than
written into the pages: every fit trains at most ``SK_MEDCNN_DOCS_MAX_EPOCHS``
epochs (default 1; ``max_epochs`` stays what the page says, the fit stops
early), MedMNIST files yield at most ``SK_MEDCNN_DOCS_MAX_IMAGES`` images of a
split (default 96, every k-th image so both classes stay), and joblib runs
sequentially (worker processes would not see the patches).
``SK_MEDCNN_DOCS_MAX_EPOCHS=0`` runs the pages with their own settings.
"""

from __future__ import annotations

import os
import re
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SHARED = ROOT.parent / "shared"
DATA_FILES = re.compile(r"shared/data/([\w.]+\.npz)")
PNEUMONIA = "pneumoniamnist_28_trainval.npz"
MAX_EPOCHS = int(os.environ.get("SK_MEDCNN_DOCS_MAX_EPOCHS", "1"))
MAX_IMAGES = int(os.environ.get("SK_MEDCNN_DOCS_MAX_IMAGES", "96"))
#: code that is shown, not run, and why
NOT_RUN = {
    "from keras": "Keras is not a dependency: the page shows its code for comparison",
    'read_image("chest_ct/': "reads the reader's own DICOM, NIfTI and JPEG files",
    'load_image_folder("data"': "reads the reader's own image folder",
    'load_image_folder("ct_slices"': "reads the reader's own image folder",
    'read_volume("ct_series/"': "reads the reader's own DICOM series folder",
    'Client("tcp://': "needs a running Dask scheduler",
    "fetch_weights(": "downloads weights from the internet, which tests cannot reach",
    "X_adult": "stands for the reader's two data sets (see tests/test_pretrained.py)",
    "X_other": "uses the downloaded checkpoint and the reader's second data set",
    "SLURMCluster(": "needs a SLURM cluster",
    "KubeCluster(": "needs a Kubernetes cluster",
    "distributed=True": "runs under torchrun, in several processes",
    '"tinynet"': "needs the plugin package: pip install ./examples/plugin_package",
    "trusted=[MyTransformer]": "MyTransformer stands for a class of the reader's",
    '"pneumoniamnist.npz",': "needs MedMNIST's file with its test split, held back",
}
#: pages whose code takes more than a few seconds even with the tiny settings
SLOW_PAGES = {
    "explanation_quality.rst",
    "inspection.rst",
    "keras.rst",
    "persistence.rst",
    "recipe.rst",
    "robustness.rst",
}

_DIRECTIVE = re.compile(r"^(?P<lead>[ *-]*)\.\. code-block::\s*(?P<language>\S+)")


def code_blocks(text: str) -> list[tuple[int, str]]:
    """Return ``(line, code)`` of each Python block of a reStructuredText page."""
    lines = text.splitlines()
    found = []
    index = 0
    while index < len(lines):
        line = lines[index]
        match = _DIRECTIVE.match(line)
        literal = line.rstrip().endswith("::") and not line.lstrip().startswith("..")
        if not (match or literal):
            index += 1
            continue
        indent = match.end("lead") if match else len(line) - len(line.lstrip())
        body = []
        index += 1
        while index < len(lines) and (
            not lines[index].strip()
            or len(lines[index]) - len(lines[index].lstrip()) > indent
        ):
            body.append(lines[index])
            index += 1
        code = textwrap.dedent("\n".join(body)).strip("\n")
        code = "\n".join(
            row for row in code.splitlines() if not re.match(r"^:\w[\w-]*:", row)
        ).strip("\n")
        start = index - len(body)
        if match and match["language"] == "python":
            found.append((start, code))
        elif literal and code and _is_python(code):
            found.append((start, code))
    return found


def _is_python(code: str) -> bool:
    """A literal block is Python when it compiles and imports or calls something."""
    try:
        compile(code, "<block>", "exec")
    except SyntaxError:
        return False
    return bool(re.search(r"^(from|import) |\w\(", code, re.MULTILINE))


PAGES = sorted(
    path.name for path in DOCS.glob("*.rst") if code_blocks(path.read_text("utf-8"))
)


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    """Patch in the tiny settings; run in a folder beside ``../shared``."""
    import joblib

    import sk_medcnn.datasets
    from sk_medcnn.estimators._base import _BaseMedicalCNN

    if MAX_EPOCHS > 0:
        fit = _BaseMedicalCNN.fit

        def short_fit(self, *args, **kwargs):
            saved = self.max_epochs
            self.max_epochs = min(saved, MAX_EPOCHS)
            try:
                return fit(self, *args, **kwargs)
            finally:
                self.max_epochs = saved

        monkeypatch.setattr(_BaseMedicalCNN, "fit", short_fit)
        load = sk_medcnn.datasets.load_medmnist

        def small_load(path_or_name, *args, **kwargs):
            shared = SHARED / "data" / f"{path_or_name}_28_trainval.npz"
            if isinstance(path_or_name, str) and shared.is_file():
                path_or_name = shared  # a name would download: the shared copy
            X, y = load(path_or_name, *args, **kwargs)
            step = max(1, len(X) // MAX_IMAGES)
            return X[::step][:MAX_IMAGES], y[::step][:MAX_IMAGES]

        monkeypatch.setattr(sk_medcnn.datasets, "load_medmnist", small_load)
        monkeypatch.setattr(sk_medcnn.datasets, "fetch_medmnist", lambda name: name)
    work = tmp_path / "project"
    work.mkdir()
    if SHARED.is_dir():
        (tmp_path / "shared").symlink_to(SHARED, target_is_directory=True)
    monkeypatch.chdir(work)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    with joblib.parallel_config(backend="sequential"):
        yield


@pytest.mark.parametrize(
    "page",
    [
        pytest.param(page, marks=pytest.mark.slow) if page in SLOW_PAGES else page
        for page in PAGES
    ],
)
def test_page_code_runs_as_written(page, tiny):
    text = (DOCS / page).read_text("utf-8")
    missing = sorted(
        {
            name
            for name in DATA_FILES.findall(text)
            if not (SHARED / "data" / name).is_file()
        }
    )
    if "fetch_medmnist(" in text:  # the tiny settings read the shared copy
        missing += [] if (SHARED / "data" / PNEUMONIA).is_file() else [PNEUMONIA]
    if missing:
        pytest.skip(f"{page} reads ../shared/data/{missing[0]}, which is absent")
    namespace: dict[str, object] = {"__name__": "__main__"}
    ran = 0
    start = time.perf_counter()
    for line, code in code_blocks(text):
        if any(marker in code for marker in NOT_RUN):
            continue
        try:
            exec(compile(code, f"{page}:{line}", "exec"), namespace)
        except Exception as error:
            raise AssertionError(
                f"the code block at {page}:{line} fails: {type(error).__name__}: "
                f"{error}\n{textwrap.indent(code, '    ')}"
            ) from error
        ran += 1
    if ran == 0:
        pytest.skip(f"{page}: every block needs what the test lacks (see NOT_RUN)")
    import matplotlib.pyplot as plt

    plt.close("all")
    print(f"{page}: {ran} blocks in {time.perf_counter() - start:.1f} s")


def test_the_runner_finds_every_kind_of_block():
    text = textwrap.dedent(
        """\
        Title
        =====

        Shell, not run::

            make demo

        Python in a literal block::

            x = int("1")

        .. code-block:: python
           :caption: a caption

           y = x + 1

        .. list-table::

           * - .. code-block:: python

                  z = y * 2

             - .. code-block:: bash

                  echo no
        """
    )
    codes = [code for _, code in code_blocks(text)]
    assert codes == ['x = int("1")', "y = x + 1", "z = y * 2"]


def test_the_tiny_settings_shorten_fits(tiny, phantoms):
    from sk_medcnn import MedicalCNNClassifier

    if MAX_EPOCHS == 0:
        pytest.skip("SK_MEDCNN_DOCS_MAX_EPOCHS=0 runs the pages as written")
    X, y = phantoms
    clf = MedicalCNNClassifier(max_epochs=5, random_state=0).fit(X[:32], y[:32])
    assert clf.n_epochs_ == MAX_EPOCHS
    assert clf.max_epochs == 5  # the parameter is the page's
    assert np.asarray(clf.classes_).tolist() == [0, 1]
