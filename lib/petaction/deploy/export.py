"""Export a trained recogniser to ONNX and run it with ONNX Runtime on CPU.

    python -m petaction export --run results/default/models/tsm/seed0 [--out model.onnx]

The exported graph is forward.RecognizerForward, the model's whole test-time forward (the one
cost.py times): from the packed clip (the tensor mmaction2's test pipeline gives, batched:
NCHW models (1, segments, 3, H, W), NCTHW models (1, clips, 3, T, H, W), raw 0..255 pixel
values, as float) to the class scores ``inference_recognizer`` returns: the data
preprocessor's normalisation, backbone, neck, head and the head's clip averaging (softmax
first when ``average_clips='prob'``). So the same pipeline output feeds either path.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..evaluation import forward
from ..evaluation.forward import checkpoint_of, load_recognizer  # noqa: F401  (export.X: the CLI's and infer's names)

OPSET = 17
PARITY_TOL = 1e-4   # max abs class-score difference ONNX Runtime vs PyTorch


# The exported graph is the one forward every cost figure is taken on (forward.py).
ScoreNet = forward.RecognizerForward


def run_params(run: Path) -> dict:
    return json.loads((Path(run) / "params.json").read_text())


def example_input(p: dict) -> torch.Tensor:
    """A random packed clip (0..255) of the input shape a run's parameters give, all test views,
    as float: the graph's input type (run_session casts the pipeline's uint8 to it)."""
    return forward.example_inputs(p, dtype=torch.float32)[0]


def export_model(model, p: dict, out: Path) -> Path:
    """Write a recogniser as ONNX. The legacy TorchScript-based exporter (dynamo=False):
    torch 2.13's default dynamo exporter needs onnxscript, and the legacy one exports every
    recogniser of this project."""
    net = ScoreNet(model).eval()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), forward.fixed_shape_trace():
        torch.onnx.export(net, (example_input(p),), str(out), dynamo=False, opset_version=OPSET,
                          input_names=["inputs"], output_names=["scores"], do_constant_folding=True)
    return out


def export(run: Path, out: Path, model=None) -> Path:
    """Write the run's recogniser (best checkpoint) as ONNX to ``out``."""
    return export_model(model if model is not None else load_recognizer(run), run_params(run), out)


def session(path: Path, threads: int | None = None):
    """An ONNX Runtime CPU session with as many intra-op threads as torch uses (a fair comparison)."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or torch.get_num_threads()
    opts.inter_op_num_threads = 1
    # No busy-waiting between runs: spinning pool threads would hold the cores that the next
    # frame's decoding (or, in the benchmark, PyTorch's own threads) needs.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_session(sess, inputs) -> np.ndarray:
    x = inputs.numpy() if isinstance(inputs, torch.Tensor) else np.asarray(inputs)
    return sess.run(None, {"inputs": x.astype(np.float32, copy=False)})[0]


def parity_model(model, p: dict, onnx_path: Path | None = None) -> dict:
    """Max |ONNX Runtime - PyTorch| class score on one input: against mmaction2's own
    test_step (what inference_recognizer calls) and against the exported ScoreNet."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(onnx_path) if onnx_path else export_model(model, p, Path(tmp) / "model.onnx")
        x = example_input(p)
        ort_scores = run_session(session(path), x)
    with torch.no_grad():
        net_scores = ScoreNet(model).eval()(x).numpy()
    mm_scores = forward.test_step_scores(model, x)
    return {"max_abs_diff": float(np.abs(ort_scores - mm_scores).max()),
            "max_abs_diff_scorenet": float(np.abs(ort_scores - net_scores).max()),
            "top1_equal": bool((ort_scores.argmax(-1) == mm_scores.argmax(-1)).all())}


def parity(run: Path, onnx_path: Path | None = None) -> dict:
    return parity_model(load_recognizer(run), run_params(run), onnx_path)


def export_all(runs: list[Path], out_dir: Path, tol: float = PARITY_TOL) -> list[dict]:
    """Export and check every run; a model that cannot export is listed with the reason."""
    rows = []
    for run in runs:
        name = Path(run).parts[-2]
        try:
            path = export(run, Path(out_dir) / f"{name}.onnx")
            r = parity(run, path)
            rows.append({"model": name, "exported": True, "ok": r["max_abs_diff"] < tol, **r, "reason": ""})
        except Exception as e:  # noqa: BLE001 - the reason is the result
            rows.append({"model": name, "exported": False, "ok": False, "reason": f"{type(e).__name__}: {e}"})
    return rows
