"""Benchmark: the worst a hostile ``.skmed`` file can make ``load_model`` cost.

Each case builds a file at the edge of what the loader accepts, or just past
it, and loads it in a fresh process (so the peak resident memory is the load's
own), recording the wall time, the peak RSS, the file's size and the outcome
(loaded, or the one ``ModelFileError``). A baseline case loads an ordinary
model, so each figure has a reference measured in the same run:

- ``baseline``: the reference CNN on 16x16 images, as saved;
- ``values at the limit``: a ``model.json`` of 2**20 JSON values (empty
  objects in a fitted attribute) just under the value limit;
- ``values past the limit``: one value more than that (refused before parsing);
- ``text at the limit``: a 31 MiB string of non-ASCII characters in the
  document (Python holds it as 4 bytes a character);
- ``huge image shape``: a ResNet-18 whose ``image_shape_`` says 8192 x 8192
  (the adversarial review's 248 s / 8.6 GiB case; now checked on the meta device);
- ``thread bomb``: ``n_threads = 2**31 - 1`` (it ended the process before).

Run from the project root::

    python benchmarks/bench_load_limits.py
    python benchmarks/bench_load_limits.py --json reports/bench_load_limits.json
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import save_results

LOADER = """
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
from sk_medcnn import load_model
from sk_medcnn.exceptions import ModelFileError
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    load_model(sys.argv[1])
    outcome = "loaded"
except ModelFileError as error:
    outcome = "ModelFileError: " + str(error).split(": ", 1)[-1][:90]
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024,
                  "import_mb": before / 1024, "outcome": outcome}))
"""


def _rewrite(data: bytes, edit: Any) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    document = json.loads(members.pop("model.json"))
    document["members"] = {
        name: {"size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
        for name, content in members.items()
    }
    edit(document["model"]["__estimator__"])
    buffer = io.BytesIO()
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    with zipfile.ZipFile(buffer, "w") as archive:  # stored: no ratio check applies
        for name, content in members.items():
            archive.writestr(name, content)
        archive.writestr("model.json", text.encode("utf-8"))
    return buffer.getvalue()


def _models(folder: Path) -> tuple[bytes, bytes]:
    from sk_medcnn import MedicalCNNClassifier, save_model
    from sk_medcnn.datasets import make_lesion_phantoms

    X, y = make_lesion_phantoms(32, image_size=16, random_state=0)
    fast = {"max_epochs": 1, "batch_size": 16, "random_state": 0, "device": "cpu"}
    small = MedicalCNNClassifier(calibration=None, **fast).fit(X, y)
    resnet = MedicalCNNClassifier(
        "resnet18",
        architecture_params={"width": 4, "stem": "small"},
        calibration=None,
        **fast,
    ).fit(X, y)
    save_model(small, folder / "small.skmed")
    save_model(resnet, folder / "resnet.skmed")
    return (folder / "small.skmed").read_bytes(), (folder / "resnet.skmed").read_bytes()


def _cases(small: bytes, resnet: bytes) -> dict[str, bytes]:
    from sk_medcnn.persistence import _MAX_DOCUMENT_VALUES

    base_values = sum(small.count(c) for c in (b",", b"[", b"{"))  # a rough bound

    def values(count: int) -> Any:
        def edit(node: dict[str, Any]) -> None:
            node["attributes"]["junk_"] = [{}] * count

        return edit

    def text(node: dict[str, Any]) -> None:
        node["attributes"]["junk_"] = "\u00e9" * (15 * 2**20)  # 30 MiB of UTF-8

    def huge_shape(node: dict[str, Any]) -> None:
        node["attributes"]["image_shape_"] = {"__tuple__": [8192, 8192, 1]}
        node["attributes"]["n_features_in_"] = 8192 * 8192

    def threads(node: dict[str, Any]) -> None:
        node["params"]["n_threads"] = 2**31 - 1

    # each "{}," counts 2: a brace and a comma
    under = (_MAX_DOCUMENT_VALUES - base_values - 4096) // 2
    return {
        "baseline": small,
        "values at the limit": _rewrite(small, values(under)),
        "values past the limit": _rewrite(small, values(_MAX_DOCUMENT_VALUES // 2)),
        "text at the limit": _rewrite(small, text),
        "huge image shape": _rewrite(resnet, huge_shape),
        "thread bomb": _rewrite(small, threads),
    }


def _load(path: Path) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", LOADER, str(path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        return {
            "outcome": f"process ended with {result.returncode}",
            "stderr": result.stderr[-300:],
        }
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None, help="save results here")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"cases": {}}
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        small, resnet = _models(folder)
        print(f"{'case':<24}{'file MB':>9}{'load s':>9}{'peak MB':>9}  outcome")
        print("(peak MB: the process's peak resident memory, imports included)")
        baseline_peak = None
        for name, data in _cases(small, resnet).items():
            path = folder / "case.skmed"
            path.write_bytes(data)
            start = time.perf_counter()
            figures = _load(path)
            figures["process_seconds"] = time.perf_counter() - start
            figures["file_mb"] = len(data) / 2**20
            if name == "baseline":
                baseline_peak = figures.get("peak_mb")
            if baseline_peak is not None and "peak_mb" in figures:
                figures["peak_over_baseline_mb"] = figures["peak_mb"] - baseline_peak
            results["cases"][name] = figures
            print(
                f"{name:<24}{figures['file_mb']:>9.2f}"
                f"{figures.get('seconds', float('nan')):>9.2f}"
                f"{figures.get('peak_mb', float('nan')):>9.0f}  {figures['outcome']}"
            )
    worst = max(
        (case.get("peak_over_baseline_mb", 0.0) for case in results["cases"].values()),
        default=0.0,
    )
    slowest = max(
        (case.get("seconds", 0.0) for case in results["cases"].values()), default=0.0
    )
    results["worst_peak_over_baseline_mb"] = worst
    results["slowest_load_s"] = slowest
    print(f"worst peak over the baseline: {worst:.0f} MB; slowest load {slowest:.2f} s")
    save_results(results, args.json)
    return results


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
