import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_memmap.py"


def test_quick_run_prints_its_figures(capsys):
    spec = importlib.util.spec_from_file_location("bench_memmap", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--quick"])
    out = capsys.readouterr().out
    assert "memmap: " in out
    assert "peak RSS: " in out
    assert "training accuracy" in out


def test_lazy_files_quick_run_prints_its_figures(capsys):
    path = BENCH.with_name("bench_lazy_files.py")
    spec = importlib.util.spec_from_file_location("bench_lazy_files", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--quick", "--num-workers", "0"])
    out = capsys.readouterr().out
    assert "300 PNG files" in out
    assert "peak RSS: " in out
