"""`infer`: windowing, smoothing, streaming, outputs on a real mp4 and the embedded data, bad input."""
import json
import re
import shutil

import cv2
import numpy as np
import pytest

from petaction.deploy import infer
from petaction.data import video
from petaction.__main__ import main


# ---- windowing and smoothing (no model) ------------------------------------------------------

def test_window_spans_first_last_and_stride():
    assert infer.window_spans(20, 15, 5) == [(0, 15), (5, 20)]              # the last window ends at the end
    assert infer.window_spans(22, 15, 5) == [(0, 15), (5, 20), (7, 22)]     # tail stepped over: one more, end-aligned
    assert infer.window_spans(40, 10, 25) == [(0, 10), (25, 35), (30, 40)]  # stride longer than a window
    assert infer.window_spans(15, 15, 5) == [(0, 15)]
    assert infer.window_spans(10, 15, 5) == [(0, 10)]                        # shorter than a window: one, padded
    assert infer.window_spans(0, 15, 5) == []
    spans = infer.window_spans(103, 16, 3)
    assert spans[0] == (0, 16) and spans[-1][1] == 103
    assert all(e - s == 16 for s, e in spans) and all(b[0] - a[0] == 3 for a, b in zip(spans[:-2], spans[1:-1]))


def onehot(i, n=4, p=0.7):
    s = np.full(n, (1 - p) / (n - 1))
    s[i] = p
    return s


def test_smoothing_majority_over_last_n_windows():
    seq = [onehot(i) for i in (0, 0, 1, 0, 1, 1, 2)]
    assert infer.smooth(seq, 1) == [0, 0, 1, 0, 1, 1, 2]      # n=1: the raw top-1
    assert infer.smooth(seq, 3) == [0, 0, 0, 0, 1, 1, 1]      # causal: only windows up to the current one
    # a tie (one vote each) goes to the class with the larger summed score
    assert infer.smooth([onehot(0, p=0.5), onehot(1, p=0.9)], 2) == [0, 1]


class FakeRecogniser:
    """Stands in for a model: 5 model frames a second, windows of 6; scores say which frames it got."""
    fps, window, classes = 5.0, 6, ["A", "B"]

    def __init__(self):
        self.calls = []

    def prepare(self, image, box):
        return image

    def scores(self, frames):
        self.calls.append([int(f[0, 0, 0]) for f in frames])
        return np.array([0.6, 0.4])


def frames(n, fps=25.0):
    """Frames whose first pixel carries the index of the model frame (every 5th at 25 fps)."""
    for i in range(n):
        img = np.full((8, 8, 3), (i // 5) % 256, np.uint8)
        yield video.Frame(i, i / fps, img)


@pytest.mark.parametrize("n_source,stride_s", [(100, 1.0), (110, 1.0), (100, 0.6), (20, 1.0), (30, 0.2)])
def test_stream_emits_the_window_spans_from_a_bounded_buffer(n_source, stride_s):
    rec = FakeRecogniser()
    src = video.from_iterable(frames(n_source), None)
    wins = list(infer.stream(src, rec, stride_s))
    n_model = -(-n_source // 5)
    expect = infer.window_spans(n_model, rec.window, round(stride_s * rec.fps))
    assert [(w.start_frame, w.end_frame) for w in wins] == expect
    assert [c for c in rec.calls] == [list(range(s, e)) for s, e in expect]   # exactly the window's frames
    assert all(len(c) <= rec.window for c in rec.calls)
    assert wins[0].start_s == 0.0 and wins[-1].end_s == pytest.approx((n_model - 1) / 5 + 0.2)
    assert [w.padded for w in wins] == [n_model < rec.window] * len(wins)


def test_stream_consumes_an_endless_iterator_until_max_seconds():
    def endless():
        i = 0
        while True:
            yield np.zeros((8, 8, 3), np.uint8)
            i += 1
    rec = FakeRecogniser()
    wins = list(infer.stream(video.from_iterable(endless(), fps=10.0), rec, 1.0, max_seconds=4.0))
    assert len(wins) == 4 and wins[-1].end_s <= 4.2       # stopped; a window a second after the first


def test_resample_keeps_the_training_rate():
    kept = [f.index for f, take in video.resample(frames(26), 5.0) if take]
    assert kept == [0, 5, 10, 15, 20, 25]
    jittery = [video.Frame(i, t, None) for i, t in enumerate([0, 0.19, 0.21, 0.39, 0.8, 0.81, 1.0])]
    assert [f.t for f, take in video.resample(jittery, 5.0) if take] == [0, 0.21, 0.8, 1.0]


def write_mp4(path, n):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (64, 48))
    for i in range(n):
        w.write(np.full((48, 64, 3), i, np.uint8))
    w.release()


def test_video_sources_refuse_bad_files_and_read_short_ones(tmp_path):
    with pytest.raises(video.VideoError, match="no such file"):
        video.open_source(tmp_path / "missing.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(video.VideoError, match="empty file"):
        video.open_source(tmp_path / "empty.mp4")
    write_mp4(tmp_path / "zero.mp4", 0)                  # a container with no frame in it
    with pytest.raises(video.VideoError, match="zero frames"):
        video.open_source(tmp_path / "zero.mp4")
    write_mp4(tmp_path / "one.mp4", 1)
    assert [f.index for f in video.open_source(tmp_path / "one.mp4").frames] == [0]
    src = video.open_source(video.sample_video())        # the real mp4 `infer sample` uses
    assert src.fps > 0 and next(src.frames).image.shape[2] == 3


# ---- with a trained tiny model ---------------------------------------------------------------



def embedded_clip(tiny_data):
    src = json.loads((tiny_data[2] / "prepare.json").read_text())["source"]
    return sorted(p.parent for p in __import__("pathlib").Path(src).rglob("frame_0_timestamp_*.jpg"))[0]


@pytest.mark.slow
def test_infer_on_a_real_mp4_writes_timeline_chart_and_annotated_video(tiny_run, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["infer", "sample", "--run", str(tiny_run), "--out", str(out), "--stride", "1", "--smooth", "2"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["annotated.mp4", "timeline.csv", "timeline.json", "timeline.png"]
    t = json.loads((out / "timeline.json").read_text())
    wins = t["windows"]
    assert len(wins) >= 2 and wins[0]["start_s"] == 0 and wins[1]["start_s"] == pytest.approx(1.0)
    assert all(len(w["topk"]) == 3 and w["topk"][0]["score"] >= w["topk"][1]["score"] for w in wins)
    assert wins[0]["box"] == [0, 0, 1280, 720] and any("whole frame" in n for n in t["notes"])
    csv_rows = (out / "timeline.csv").read_text().splitlines()
    assert len(csv_rows) == len(wins) + 1 and csv_rows[0].startswith("index,start_s,end_s,label")
    cap = cv2.VideoCapture(str(out / "annotated.mp4"))
    src = cv2.VideoCapture(str(video.sample_video()))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == src.get(cv2.CAP_PROP_FRAME_COUNT)
    s = t["stream"]
    assert s["windows"] == len(wins) and s["windows_per_s"] > 0 and s["latency_ms_median"] > 0
    assert "windows/s" in capsys.readouterr().out


@pytest.mark.slow
def test_infer_on_the_embedded_data_pads_a_short_clip(tiny_run, tiny_data, tmp_path, capsys):
    clip = embedded_clip(tiny_data)
    out = tmp_path / "out"
    assert main(["infer", str(clip), "--run", str(tiny_run), "--out", str(out), "--window", "60"]) == 0
    t = json.loads((out / "timeline.json").read_text())
    assert len(t["windows"]) == 1 and t["windows"][0]["padded"]
    assert any("padded as in testing" in n for n in t["notes"]) and "padded" in capsys.readouterr().out
    assert (out / "annotated.mp4").stat().st_size > 0
    whole = t["windows"][0]["box"]
    # the localiser hook: the clip's own label boxes instead of the whole frame
    assert main(["infer", str(clip), "--run", str(tiny_run), "--out", str(out), "--boxes", "label"]) == 0
    t = json.loads((out / "timeline.json").read_text())
    box = t["windows"][-1]["box"]
    assert box != whole and box[2] < whole[2] and any("label boxes" in n for n in t["notes"])
    assert "needs an AI-Hub clip folder" in fail_cli(capsys, ["infer", "sample", "--run", str(tiny_run),
                                                              "--out", str(out), "--boxes", "label"])


@pytest.mark.slow
def test_onnx_backend_gives_the_same_labels(tiny_run, tmp_path):
    a = infer.infer(video.sample_video(), tiny_run, tmp_path / "a", annotate=False, log=lambda *_: None)
    b = infer.infer(video.sample_video(), tiny_run, tmp_path / "b", backend="onnx", annotate=False,
                    log=lambda *_: None)
    for wa, wb in zip(a["windows"], b["windows"]):
        assert wa["topk"][0]["label"] == wb["topk"][0]["label"]
        assert abs(wa["topk"][0]["score"] - wb["topk"][0]["score"]) < 1e-4
    assert len(a["windows"]) == len(b["windows"])


def fail_cli(capsys, args):
    rc = main(args)
    err = capsys.readouterr().err.strip()
    assert rc != 0 and len(err.splitlines()) == 1 and err.startswith("error: ")
    return err


@pytest.mark.slow
def test_bad_inputs_are_one_line_errors_and_leave_nothing(tiny_run, tmp_path, capsys):
    out = tmp_path / "out"
    run = ["--run", str(tiny_run), "--out", str(out)]
    assert "no such file" in fail_cli(capsys, ["infer", str(tmp_path / "missing.mp4"), *run])
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert "empty file" in fail_cli(capsys, ["infer", str(tmp_path / "empty.mp4"), *run])
    (tmp_path / "junk.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    assert "junk.mp4" in fail_cli(capsys, ["infer", str(tmp_path / "junk.mp4"), *run])
    (tmp_path / "noframes").mkdir()
    assert "no frame_N" in fail_cli(capsys, ["infer", str(tmp_path / "noframes"), *run])
    bare = tmp_path / "bare_run"
    bare.mkdir()
    for f in ("config.py", "params.json"):
        shutil.copy(tiny_run / f, bare / f)
    err = fail_cli(capsys, ["infer", "sample", "--run", str(bare), "--out", str(out)])
    assert "has no kept checkpoint" in err
    assert "not a training run" in fail_cli(capsys, ["infer", "sample", "--run", str(tmp_path), "--out", str(out)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bare_run", "empty.mp4", "junk.mp4", "noframes"]


@pytest.mark.slow
def test_a_failure_midway_leaves_the_old_output_and_no_partial_one(tiny_run, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "timeline.json").write_text("{}")         # an earlier, complete result
    calls = {"n": 0}
    real = infer.Recogniser.scores

    def flaky(self, frames):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("boom")
        return real(self, frames)
    monkeypatch.setattr(infer.Recogniser, "scores", flaky)
    with pytest.raises(RuntimeError, match="boom"):
        infer.infer(video.sample_video(), tiny_run, out, log=lambda *_: None)
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and (out / "timeline.json").read_text() == "{}"


@pytest.mark.slow
def test_export_verb_writes_onnx_that_matches(tiny_run, tmp_path, capsys):
    out = tmp_path / "tsm.onnx"
    assert main(["export", "--run", str(tiny_run), "--out", str(out)]) == 0
    assert out.stat().st_size > 0 and "max |ONNX Runtime - PyTorch| score" in capsys.readouterr().out
    bare = tmp_path / "bare_run"
    bare.mkdir()
    shutil.copy(tiny_run / "config.py", bare / "config.py")
    assert "has no kept checkpoint" in fail_cli(capsys, ["export", "--run", str(bare), "--out", str(tmp_path / "x.onnx")])
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.slow
def test_the_studys_pet_detector_plugs_into_the_localiser_hook(tmp_path):
    """A detector.py run folder (here its untrained weights: the plumbing, not the accuracy)."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    from petaction.training import detector
    from petaction.models import checkpoints
    det = tmp_path / "study" / "detector"
    det.mkdir(parents=True)
    cfg = detector.build(detector.settings("tiny"), tmp_path, det)
    cfg.dump(str(det / "config.py"))
    init_default_scope("mmdet")
    torch.manual_seed(0)
    torch.save({"state_dict": MODELS.build(cfg.model).state_dict()}, det / "best.pth")
    checkpoints.record_checkpoint(det / "best.pth")
    (det / "metrics.json").write_text(json.dumps({"detector": "faster_rcnn_tiny", "box_ap": 0.0,
                                                  "best_checkpoint": "best.pth"}))
    run = tmp_path / "study" / "models" / "tsm" / "seed0"
    loc = infer.make_localiser("auto", "sample", run)        # auto finds the study's detector
    assert isinstance(loc, infer.DetectorLocaliser) and "faster_rcnn_tiny" in loc.name
    frame = video.Frame(0, 0.0, np.random.default_rng(0).integers(0, 255, (72, 128, 3), dtype=np.uint8))
    loc.min_score = 0.0
    box = loc(frame)
    assert box is not None and len(box) == 4 and box[2] > 0 and box[3] > 0
    assert 0 <= box[0] <= 128 and 0 <= box[1] <= 72
    loc.min_score = 1.1                                        # nothing found: the previous box stays
    assert loc(frame) == box
    assert isinstance(infer.make_localiser("auto", "sample", tmp_path / "other" / "models" / "m" / "seed0"),
                      infer.WholeFrame)
    with pytest.raises(FileNotFoundError, match="no trained pet detector"):
        infer.make_localiser("detector", "sample", tmp_path / "other" / "models" / "m" / "seed0")


def fail_cli_fd(capfd, args):
    """Exit code 2 and one line on the process's stderr (file descriptor 2: OpenCV's and
    FFmpeg's own messages would land there too), never a traceback."""
    rc = main(args)
    err = capfd.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


@pytest.mark.slow
def test_bad_videos_are_one_line_errors_and_leave_no_output(tiny_run, tiny_data, tmp_path, capfd):
    out = tmp_path / "out"
    out.mkdir()
    (out / "timeline.json").write_text("{}")         # an earlier, complete result: kept as it was
    run = ["--run", str(tiny_run), "--out", str(out), "--no-video"]
    bunny = video.sample_video().read_bytes()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "truncated.mp4").write_bytes(bunny[: len(bunny) // 2])
    assert "truncated.mp4" in fail_cli_fd(capfd, ["infer", str(bad / "truncated.mp4"), *run])
    corrupt = bytearray(bunny)                        # frames past the middle cannot be decoded
    corrupt[len(bunny) // 2: len(bunny) // 2 + 20000] = bytes(20000)
    (bad / "corrupt.mp4").write_bytes(bytes(corrupt))
    err = fail_cli_fd(capfd, ["infer", str(bad / "corrupt.mp4"), *run])
    assert "corrupt.mp4" in err and re.search(r"frame \d+ of \d+ cannot be decoded", err)
    (bad / "zero.mp4").write_bytes(b"")
    assert "empty file" in fail_cli_fd(capfd, ["infer", str(bad / "zero.mp4"), *run])
    (bad / "notes.mp4").write_text("these are my notes, not a video\n" * 20)
    assert "no frame can be decoded" in fail_cli_fd(capfd, ["infer", str(bad / "notes.mp4"), *run])
    write_mp4(bad / "short.mp4", 1)                   # one frame: less than one clip of the model
    assert "fewer than the" in fail_cli_fd(capfd, ["infer", str(bad / "short.mp4"), *run])
    clip = bad / "clip"                              # an AI-Hub clip with an unreadable frame midway
    shutil.copytree(embedded_clip(tiny_data), clip)
    frames = sorted(clip.glob("frame_*.jpg"), key=lambda p: int(p.name.split("_")[1]))
    frames[len(frames) // 2].write_bytes(b"\xff\xd8 not a jpeg")
    err = fail_cli_fd(capfd, ["infer", str(clip), *run])
    assert frames[len(frames) // 2].name in err and "cannot be decoded" in err
    assert "webcam 97" in fail_cli_fd(capfd, ["infer", "97", *run])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "out"]           # no partial output
    assert [p.name for p in out.iterdir()] == ["timeline.json"] and (out / "timeline.json").read_text() == "{}"
