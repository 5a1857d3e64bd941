"""Online TSM (online.py): the step equals the offline model, exports to ONNX, keeps bounded
caches; `infer --online` writes a per-frame timeline."""
import copy
import json
import resource

import cv2
import numpy as np
import pytest
import torch

from petaction.deploy import export, online
from petaction.evaluation import forward
from petaction.data import video
from petaction import params as P
from petaction.__main__ import main

TSM_FAMILY = [n for n in P.names("models") if P.resolve_train({"model": n})["mm_base"].startswith("tsm")]
FULL_SIZE = 64     # the full profile's architectures at a small image size (R-50/R-101 at 224 px: minutes)


def test_the_tsm_family_is_found():
    assert {"tsm", "tsm_balanced", "tsm_mobilenetv2", "tsm_r101"} <= set(TSM_FAMILY)


def build(name, profile, img_size=None):
    """A model of that profile with its initial weights (equivalence needs no training)."""
    from mmaction.registry import MODELS
    from mmengine.registry import init_default_scope
    from petaction.models import mmconfig
    init_default_scope("mmaction")
    over = {"model": name, "profile": profile, **({"img_size": img_size} if img_size else {})}
    p = P.resolve_train(over)
    torch.manual_seed(0)
    model = MODELS.build(mmconfig.model_dict(p, 5)).eval()
    # BN statistics away from the initial (0, 1), so that the test sees them used
    g = torch.Generator().manual_seed(2)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model, p


def frames(n, size, seed=1):
    return torch.randint(0, 256, (n, 3, size, size), generator=torch.Generator().manual_seed(seed)).float()


def run_stream(net, clip, backend="torch", **kw):
    """{frame: scores} of an online stream over ``clip`` and its flush."""
    st = online.Stepper(net, backend, **kw)
    outs = [st.push(clip[i:i + 1]) for i in range(len(clip))] + list(st.flush())
    return {tau: s for tau, s in (o for o in outs if o is not None)}


CASES = [(n, prof, None) for n in TSM_FAMILY for prof in ("tiny", "quick")] + \
        [(n, "full", FULL_SIZE) for n in TSM_FAMILY]


@pytest.mark.parametrize("name,profile,size", CASES)
def test_exact_online_scores_equal_the_offline_models_after_num_segments_frames(name, profile, size):
    model, p = build(name, profile, size)
    n = model.backbone.num_segments
    clip = frames(n, p["img_size"])
    offline = forward.test_step_scores(model, clip[None])[0]         # mmaction2's own test_step
    net = online.OnlineTSM(copy.deepcopy(model), "exact", gap=1)
    out = run_stream(net, clip)
    assert sorted(out) == list(range(n))                           # every frame, after the flush
    assert np.abs(out[n - 1] - offline).max() < online.EQUIV_TOL
    assert net.delay == len(net.blocks) and len(net.blocks) > 0


def consensus(logits, tau, n, gap, average):
    """The online consensus from per-frame logits: frames tau, tau-gap, ... (>= 0), averaged."""
    idx = [tau - k * gap for k in range(n) if tau - k * gap >= 0]
    return torch.softmax(logits[idx].mean(0), 0).numpy() if average == "prob" else logits[idx].mean(0).numpy()


@pytest.mark.parametrize("mode", online.MODES)
@pytest.mark.parametrize("name", ["tsm", "tsm_mobilenetv2"])
def test_a_long_stream_equals_the_offline_network_over_the_whole_clip(name, mode, monkeypatch):
    """Frame by frame over 13 frames, shift partners 2 apart: the two interleaved streams are
    each one offline clip (exact), or the same network with the future fold zeroed (causal)."""
    model, p = build(name, "tiny")
    T, gap, n = 13, 2, model.backbone.num_segments
    clip = frames(T, p["img_size"])
    out = run_stream(online.OnlineTSM(copy.deepcopy(model), mode, gap), clip)
    assert sorted(out) == list(range(T))
    if mode == "causal":     # the reference: mmaction2's shift with the future fold zeroed
        real = online.TemporalShift.shift

        def one_way(x, num_segments, shift_div=3):
            y = real(x, num_segments, shift_div).clone()
            y[:, :x.shape[1] // shift_div] = 0
            return y
        monkeypatch.setattr(online.TemporalShift, "shift", staticmethod(one_way))
    logits = torch.zeros(T, 5)
    for r in range(gap):
        logits[r::gap] = online.offline_frame_logits(model, clip[r::gap])
    average = model.cls_head.average_clips
    worst = max(np.abs(out[tau] - consensus(logits, tau, n, gap, average)).max() for tau in range(T))
    assert worst < online.EQUIV_TOL


def test_the_causal_step_is_not_the_offline_model():
    """Why exact mode exists: TSM's causal shift on weights trained with the bidirectional one."""
    model, p = build("tsm", "quick")
    n = model.backbone.num_segments
    clip = frames(n, p["img_size"])
    offline = forward.test_step_scores(model, clip[None])[0]
    out = run_stream(online.OnlineTSM(copy.deepcopy(model), "causal"), clip)
    assert np.abs(out[n - 1] - offline).max() > 100 * online.EQUIV_TOL


@pytest.mark.parametrize("mode", online.MODES)
@pytest.mark.parametrize("name", TSM_FAMILY)
def test_onnx_runtime_runs_the_online_step_as_pytorch_does(name, mode, tmp_path):
    model, p = build(name, "tiny")
    clip = frames(9, p["img_size"])
    net = online.OnlineTSM(model, mode, gap=2)
    path = online.export_step(net, clip[:1], tmp_path / "step.onnx")
    a, b = run_stream(net, clip), run_stream(net, clip, "onnx", onnx_path=path)
    assert sorted(a) == sorted(b) == list(range(9))
    assert max(np.abs(a[t] - b[t]).max() for t in a) < export.PARITY_TOL


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2 ** 20


def test_caches_stay_the_same_size_over_thousands_of_frames():
    model, p = build("tsm", "tiny")
    net = online.OnlineTSM(model, "exact", gap=3)
    st = online.Stepper(net)
    frame = frames(1, p["img_size"])
    sizes, rss = [], []
    for i in range(2000):
        st.push(frame + (i % 7))
        if i in (200, 1999):
            sizes.append([tuple(s.shape) for s in st.states])
            rss.append(rss_mb())
    assert sizes[0] == sizes[1]
    # a cache kept per frame would add about 0.3 MB a frame here (> 500 MB over the run)
    assert rss[1] - rss[0] < 50, rss


def test_only_the_tsm_family_runs_online():
    model, _ = build("tsn", "tiny")
    with pytest.raises(ValueError, match="drop --online"):
        online.OnlineTSM(model)
    model, _ = build("tsm", "tiny")
    with pytest.raises(ValueError, match="online mode 'both'"):
        online.OnlineTSM(model, "both")


# ---- the infer verb ------------------------------------------------------------------------



def model_frames(path, fps=5.0):
    return sum(take for _, take in video.resample(video.open_source(path).frames, fps))


@pytest.mark.slow
def test_infer_online_writes_a_per_frame_timeline_of_the_whole_video(tiny_run, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["infer", "sample", "--run", str(tiny_run), "--out", str(out), "--online"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["annotated.mp4", "timeline.csv", "timeline.json", "timeline.png"]
    t = json.loads((out / "timeline.json").read_text())
    rows, n = t["windows"], model_frames(video.sample_video())
    assert t["mode"] == "online" and t["online"]["shift"] == "exact"
    assert [r["index"] for r in rows] == list(range(n))                  # one per model frame, none missing
    assert rows[0]["start_s"] == 0 and rows[-1]["end_s"] == pytest.approx(n / 5.0)
    assert all(b["end_s"] - a["end_s"] == pytest.approx(0.2) for a, b in zip(rows, rows[1:]))
    assert all(r["latency_ms"] > 0 for r in rows) and rows[0]["padded"] and not rows[-1]["padded"]
    cap, src = cv2.VideoCapture(str(out / "annotated.mp4")), cv2.VideoCapture(str(video.sample_video()))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == src.get(cv2.CAP_PROP_FRAME_COUNT)
    assert len((out / "timeline.csv").read_text().splitlines()) == n + 1
    s = t["stream"]
    printed = capsys.readouterr().out
    assert f"{s['predictions']} predictions in" in printed and f"{s['predictions_per_s']:.2f} predictions/s" in printed
    assert set(s["stages"]) == {"decode", "localise", "recognise", "write", "other"}
    assert any("exact shift" in n for n in t["notes"])


@pytest.mark.slow
def test_infer_online_onnx_and_causal_and_detect_every(tiny_run, tmp_path):
    quiet = dict(annotate=False, log=lambda *_: None)
    from petaction.deploy import infer
    a = infer.infer(video.sample_video(), tiny_run, tmp_path / "a", online=infer.Online(), **quiet)
    b = infer.infer(video.sample_video(), tiny_run, tmp_path / "b", backend="onnx", online=infer.Online(), **quiet)
    assert len(a["windows"]) == len(b["windows"])
    for wa, wb in zip(a["windows"], b["windows"]):
        assert wa["topk"][0]["label"] == wb["topk"][0]["label"]
        assert abs(wa["topk"][0]["score"] - wb["topk"][0]["score"]) < 1e-4
    calls = []

    def loc(frame):
        calls.append(frame.index)
        return (10.0, 10.0, 200.0, 150.0)
    loc.name = "a test box"
    c = infer.infer(video.sample_video(), tiny_run, tmp_path / "c", online=infer.Online("causal", 2, 4),
                    localiser=loc, **quiet)
    n = model_frames(video.sample_video())
    assert len(c["windows"]) == n and c["online"]["delay_frames"] == 0
    assert len(calls) == -(-n // 4)                                       # every 4th model frame
    assert any("every 4 model frames" in note for note in c["notes"])
    assert c["windows"][-1]["box"] == [10.0, 10.0, 200.0, 150.0]


def fail_cli(capsys, args):
    rc = main(args)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith("error: ")
    return err


@pytest.mark.slow
def test_infer_online_bad_inputs_fail_in_one_line_and_write_nothing(tiny_run, tmp_path, capsys):
    out = tmp_path / "out"
    run = ["--run", str(tiny_run), "--out", str(out), "--online"]
    assert "no such file" in fail_cli(capsys, ["infer", str(tmp_path / "missing.mp4"), *run])
    assert "--gap (0)" in fail_cli(capsys, ["infer", "sample", *run, "--gap", "0"])
    assert "--detect-every" in fail_cli(capsys, ["infer", "sample", *run, "--detect-every", "0"])
    assert list(tmp_path.iterdir()) == []


def test_without_an_annotated_copy_only_the_models_frames_are_decoded():
    path = video.sample_video()
    every = [(f.t, take) for f, take in video.resample(video.open_source(path).frames, 5.0)]
    src = video.open_source(path)
    lazy = [(f.t, take, f.image is not None) for f, take in video.resample(src.frames, 5.0, src)]
    assert [(t, take) for t, take, _ in lazy] == every                 # the same frames taken
    assert all(decoded == take for _, take, decoded in lazy) and not all(d for *_, d in lazy)
