import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))   # test helpers (aihub_fixture)

import pytest  # noqa: E402

# Enough clips per class for a train/val/test split of every class (3+), small and short.
TINY_PREPARE = {"synth_scale": 0.4, "synth_frames": 10, "short_side": 32, "workers": 1}


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A prepared tiny synthetic study: (results_dir, study name, data dir)."""
    from petaction import prepare
    results = tmp_path_factory.mktemp("tiny_results")
    info = prepare.prepare(study="tiny", results_dir=results, **TINY_PREPARE)
    return results, "tiny", Path(info["data_dir"])
