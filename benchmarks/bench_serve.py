"""Load test of ``sk-medcnn serve``: requests/s, latency and memory on loopback.

A model (1 epoch on lesion phantoms, 28 x 28) is saved and served by
``sk-medcnn serve`` in its own process on 127.0.0.1. ``--clients`` threads
then send ``--requests`` ``POST /predict`` requests in all (a PNG, and every
tenth a DICOM file when pydicom is installed). Reported: requests per second,
the median and 99th-percentile latency, failed requests, and the server's
resident memory (VmRSS) after a warm-up, after the first half and at the end
(flat memory: the end within 10% of the warm-up figure).

Run from the project root::

    python benchmarks/bench_serve.py --json reports/bench_serve.json
    python benchmarks/bench_serve.py --quick
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import require_at_least, save_results


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _files() -> list[tuple[str, bytes]]:
    import imageio.v3 as iio

    from sk_medcnn.datasets import make_lesion_phantoms

    X, _ = make_lesion_phantoms(4, image_size=28, random_state=1)
    files = [("phantom.png", iio.imwrite("<bytes>", X[0], extension=".png"))]
    try:
        from pydicom.data import get_testdata_file

        files.append(("ct.dcm", Path(get_testdata_file("CT_small.dcm")).read_bytes()))
    except ImportError:
        pass
    return files


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="40 requests")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    require_at_least(parser, args, ["requests", "clients"])
    if args.quick:
        args.requests = min(args.requests, 40)
    import httpx

    from sk_medcnn import MedicalCNNClassifier, save_model
    from sk_medcnn.datasets import make_lesion_phantoms

    with tempfile.TemporaryDirectory() as folder:
        X, y = make_lesion_phantoms(200, image_size=28, random_state=0)
        model = Path(folder) / "bench.skmed"
        save_model(MedicalCNNClassifier(max_epochs=1, random_state=0).fit(X, y), model)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sk_medcnn",
                "serve",
                str(model),
                "--port",
                str(port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    httpx.get(f"{url}/health", timeout=1).raise_for_status()
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError("the server did not start") from None
                    time.sleep(0.2)
            files = _files()
            with httpx.Client(timeout=120) as client:
                for name, content in files * 5:  # warm-up
                    client.post(f"{url}/predict", files={"file": (name, content)})
            memory = {"warm": _rss_mib(server.pid)}
            latencies: list[float] = []
            failures = [0]
            lock = threading.Lock()
            counter = iter(range(args.requests))

            def work() -> None:
                with httpx.Client(timeout=120) as client:
                    for index in counter:
                        name, content = files[1 if index % 10 == 9 else 0]
                        if len(files) == 1:
                            name, content = files[0]
                        start = time.perf_counter()
                        response = client.post(
                            f"{url}/predict", files={"file": (name, content)}
                        )
                        elapsed = time.perf_counter() - start
                        with lock:
                            latencies.append(elapsed)
                            failures[0] += response.status_code != 200
                            if len(latencies) == args.requests // 2:
                                memory["half"] = _rss_mib(server.pid)

            start = time.perf_counter()
            threads = [threading.Thread(target=work) for _ in range(args.clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            seconds = time.perf_counter() - start
            memory["end"] = _rss_mib(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
    times = np.array(latencies) * 1e3
    results = {
        "requests": args.requests,
        "clients": args.clients,
        "seconds": seconds,
        "requests_per_s": args.requests / seconds,
        "latency_p50_ms": float(np.percentile(times, 50)),
        "latency_p99_ms": float(np.percentile(times, 99)),
        "failed": failures[0],
        "rss_mib": memory,
        "memory_flat": memory["end"] <= 1.1 * memory["warm"],
    }
    print(
        f"{args.requests} requests from {args.clients} clients in {seconds:.1f} s: "
        f"{results['requests_per_s']:.1f} requests/s, latency p50 "
        f"{results['latency_p50_ms']:.0f} ms, p99 {results['latency_p99_ms']:.0f} ms, "
        f"{failures[0]} failed; server RSS {memory['warm']:.0f} MiB after warm-up, "
        f"{memory.get('half', float('nan')):.0f} MiB half-way, {memory['end']:.0f} MiB "
        f"at the end ({'flat' if results['memory_flat'] else 'GROWING'})"
    )
    save_results(results, args.json)
    return results


if __name__ == "__main__":
    main()
