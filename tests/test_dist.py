"""DDP on CPU: two gloo processes under torchrun, started the way the train notebook does."""
import json

import pandas as pd
import pytest

from petaction.training import launch
from petaction import params as P
from petaction.training import train


def tiny_params(tiny_data, **kw):
    results, study, _ = tiny_data
    return P.resolve_train({"model": "tsn", "profile": "tiny", "study": study, "results_dir": str(results), **kw})


@pytest.mark.slow
def test_two_process_gloo_training(tiny_data):
    p = tiny_params(tiny_data, seed=11, nproc=2)
    lines = []
    m = train.run(p, log=lines.append)
    run = tiny_data[0] / "tiny" / "models" / "tsn" / "seed11"
    assert m["processes"] == 2 and not m["resumed"]
    assert json.loads((run / "metrics.json").read_text())["test"] == m["test"]
    assert any("torch.distributed.run" in line and "--nproc_per_node 2" in line for line in lines)
    assert (run / "torchrun.log").is_file()
    log = pd.read_csv(run / "log.csv")           # one writer: the main process
    assert list(log["epoch"]) == [1] and log["val_top1"].between(0, 1).all()
    assert m["n_test"] == len(train.read_split(tiny_data[2], "test"))   # every test clip, in order
    cfg = (run / "config.py").read_text()
    assert "PetDistributedDataParallel" in cfg and "'gloo'" in cfg
    assert "batch_size=2" in cfg.replace(" ", "")   # the global batch of 4, split over 2 processes


def test_settings_this_machine_cannot_honour_are_errors():
    p = P.resolve_train({"model": "tsn", "profile": "tiny", "nproc": 3})
    with pytest.raises(P.ParamError, match="does not split over 3 processes"):
        launch.check(p)
    with pytest.raises(P.ParamError, match="amp: true needs a CUDA GPU"):
        launch.check(dict(p, nproc=1, amp=True))
    with pytest.raises(P.ParamError, match="nproc must be a positive"):
        launch.check(dict(p, nproc=0))


def test_torchrun_command_one_box_and_slurm(tmp_path):
    p = P.resolve_train({"model": "tsn", "profile": "tiny", "nproc": 4})
    cmd = launch.torchrun_command(p, tmp_path, resume=True, env={})
    assert cmd[1:5] == ["-m", "torch.distributed.run", "--nproc_per_node", "4"] and "--standalone" in cmd
    assert cmd[-3:] == ["petaction.training.worker", str(tmp_path), "--resume"]
    with pytest.raises(P.ParamError, match="needs a Slurm allocation"):
        launch.torchrun_command(dict(p, nnodes=2), tmp_path, False, env={})
    cmd = launch.torchrun_command(dict(p, nnodes=2), tmp_path, False, env={"SLURM_JOB_ID": "77"}, head="node1")
    assert cmd[:4] == ["srun", "--nodes=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
    joined = " ".join(cmd)
    assert "--nnodes 2" in joined and "--rdzv_endpoint node1:29400" in joined and "--rdzv_id 77" in joined
    assert "--standalone" not in cmd


@pytest.mark.parametrize("strategy", ["ddp", "parallel"])
def test_slurm_script_runs_a_valid_study(tmp_path, strategy):
    """tools/slurm_train.sbatch, with python replaced by a stub that prints its arguments:
    the study parameters it passes load (gpus, strategy, nnodes, prepare)."""
    import os
    import subprocess
    from petaction import study
    from petaction.__main__ import parse_pairs
    from petaction.core.paths import REPO
    stub = tmp_path / "py"
    stub.write_text("#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n")
    stub.chmod(0o755)
    env = dict(os.environ, PY=str(stub), SLURM_JOB_NUM_NODES="2", STRATEGY=strategy, SLURM_SUBMIT_DIR=str(REPO))
    args = subprocess.run(["bash", str(REPO / "tools" / "slurm_train.sbatch")], env=env, capture_output=True,
                          text=True, check=True).stdout.splitlines()
    assert args[:4] == ["-m", "petaction", "study", "-f"]
    pairs = [args[i + 1:i + 3] for i, a in enumerate(args) if a == "-p"]
    cfg = study.load_study(REPO / args[4], parse_pairs(pairs))
    assert cfg["strategy"] == strategy and cfg["gpus"] == "auto" and cfg["data_root"] == ""
    assert cfg["prepare"]["short_side"] == 256 and cfg["profile"] == "full"
    assert cfg["train"] == ({"nnodes": 2} if strategy == "ddp" else {})


def test_channels_last_converts_2d_and_3d_convolutions():
    import torch
    from petaction.training import mmhooks
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Conv3d(3, 4, 3), torch.nn.Linear(4, 2))
    mmhooks.to_channels_last(net)
    assert net[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not net[0].weight.is_contiguous()
    assert net[1].weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert net[2].weight.is_contiguous()
    x = torch.randn(1, 3, 8, 8)                    # the same convolution, in another layout
    ref = torch.nn.functional.conv2d(x, net[0].weight.contiguous(), net[0].bias)
    torch.testing.assert_close(net[0](x), ref)


def test_torchrun_stops_when_its_notebook_dies(tmp_path):
    """A killed notebook kernel must not leave torchrun training beside the re-run that resumes."""
    import os
    import signal
    import subprocess
    import sys
    import time
    code = (f"from pathlib import Path\nfrom petaction.training import launch\n"
            f"launch.torchrun_command = lambda *a, **k: ['sh', '-c', 'echo $$ > {tmp_path}/child.pid; exec sleep 300']\n"
            f"launch.run_torchrun({{}}, Path({str(tmp_path)!r}), False)\n")
    parent = subprocess.Popen([sys.executable, "-c", code])
    pid_file = tmp_path / "child.pid"
    for _ in range(300):
        if pid_file.is_file() and pid_file.read_text().strip():
            break
        time.sleep(0.1)
    child = int(pid_file.read_text())

    def alive(pid):
        try:
            return "\nState:\tZ" not in open(f"/proc/{pid}/status").read()
        except FileNotFoundError:
            return False

    assert alive(child)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    for _ in range(50):
        if not alive(child):
            break
        time.sleep(0.1)
    else:
        os.kill(child, signal.SIGKILL)
        raise AssertionError("torchrun outlived the process that started it")
