"""benchmarks/gpu_check.py runs on CPU with the tiny model and reports what it promises."""
import importlib.util

import pytest

from petaction.core.paths import REPO

pytestmark = pytest.mark.slow


def load_gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_gpu_check_on_cpu(tiny_data):
    res = load_gpu_check().main(["--tiny", "--iters", "5", "--warmup", "1", "--data", str(tiny_data[2]), "--out", ""])
    fp32, amp = res["variants"]
    assert fp32["iters_timed"] == 4 and fp32["clips_per_s"] > 0 and fp32["peak_rss_gib"] > 0
    assert 0 <= fp32["data_wait_share"] < 1
    assert amp["amp"] and "needs a GPU" in amp["skipped"]          # CPU: AmpOptimWrapper refuses
    assert res["device"] == "cpu" and res["loader_clips_per_s_one_process"] > 0
