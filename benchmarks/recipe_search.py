"""The recipe search behind the quick profile: many short trainings, fast, on one machine.

    .venv/bin/python benchmarks/recipe_search.py '{"name": "tsm16_a1", "model": "tsm", "steps": 600,
        "batch": 16, "lr": 0.001, "val_every": 100, "mc": {"cls_head": {"dropout_ratio": 0}},
        "data": "results/default/data"}'

An exploration loop, not the study's training: the clips of a prepared study are held in memory
(36 px crops: a 32 px random crop and a flip for training, the centre for validation; segments
or dense clips sampled as mmaction2's SampleFrames does), the model is the run's own mmaction2
model (params.resolve_train -> mmconfig.model_dict, with "mc" merged over it) with its data
preprocessor and loss, stepped by torch's AdamW (or SGD) under a one-cycle schedule. It prints
the smoothed training loss and validation top-1 every `val_every` steps and the CPU seconds
spent. Chosen settings are then checked through the study's own pipeline by
benchmarks/learnability.py, whose results the docs quote. The runs made while choosing the
quick profile are in benchmarks/results/recipe_search.json (each with its spec and curve).

spec keys: name, model, steps, batch (16), lr, opt (AdamW | SGD), wd (0.05), sched (onecycle |
warmcos), pct, clip (40), seed, threads (1), val_every, p (train-parameter overrides), mc (model
dict merged over the run's), data (a prepared data folder), resize (resize the square crops to
this side before cropping, as the study's Resize step; default: crop the cache as it is), test
(also score the test split), out (a JSON file for the curve).
"""
import json, sys, time, math, os
import numpy as np, torch, cv2
import petaction.mmsetup  # noqa: F401  (runs petaction.setup())
from petaction import params
from petaction.models import mmconfig
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from mmengine.registry import init_default_scope

spec = json.loads(sys.argv[1])
torch.set_num_threads(spec.get("threads", 1))
torch.manual_seed(spec.get("seed", 0)); np.random.seed(spec.get("seed", 0))
rng = np.random.default_rng(spec.get("seed", 0))
init_default_scope("mmaction")
DATA = spec.get("data", "results/default/data")

def load(split):
    rows = [l.split() for l in open(f"{DATA}/{split}.txt")]
    clips = []
    for name, n, lab in rows:
        fr = [cv2.imread(f"{DATA}/frames/{name}/img_{i:05d}.jpg")[:, :, ::-1] for i in range(1, int(n) + 1)]
        if spec.get("resize"):   # the study pipeline's Resize to this short side first (mmcv, bilinear)
            import mmcv
            fr = [mmcv.imresize(np.ascontiguousarray(f), (spec["resize"], spec["resize"])) for f in fr]
        clips.append((np.stack(fr), int(lab)))
    return clips

train, val = load("train"), load("val")
test = load("test") if spec.get("test") else []
K = len(json.load(open(f"{DATA}/classes.json"))["classes"])
over = {k: v for k, v in spec.get("p", {}).items()}
p = params.resolve_train({"model": spec["model"], **over})
model_cfg = mmconfig.model_dict(p, K)
model_cfg = params.deep_merge(model_cfg, spec.get("mc", {}))
model_cfg = params.strip_delete(model_cfg)
model = MODELS.build(model_cfg)
model.init_weights()
S, size = p["img_size"], p["img_size"]
seg = p["sampling"] == "segments"

def sample(fr, train_mode):
    n = len(fr)
    if seg:
        k = p["num_segments"]; edges = np.linspace(0, n, k + 1)
        if train_mode:
            idx = [int(rng.integers(int(edges[i]), max(int(edges[i]) + 1, int(edges[i + 1])))) for i in range(k)]
        else:
            idx = [int((edges[i] + edges[i + 1]) / 2) for i in range(k)]
    else:
        L, it = p["clip_len"], p["frame_interval"]; span = L * it
        st = int(rng.integers(0, max(1, n - span + 1))) if train_mode else max(0, (n - span) // 2)
        idx = [min(n - 1, st + j * it) for j in range(L)]
    x = fr[idx]  # T,H,W,C
    H = x.shape[1]
    if train_mode:
        oy, ox = rng.integers(0, H - S + 1, 2)
        x = x[:, oy:oy + S, ox:ox + S]
        if rng.random() < 0.5:
            x = x[:, :, ::-1]
    else:
        o = (H - S) // 2; x = x[:, o:o + S, o:o + S]
    t = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2)  # T,C,H,W
    if not seg:
        t = t.permute(1, 0, 2, 3).unsqueeze(0)  # 1,C,T,H,W
    return t

def batch(clips, train_mode):
    ins, ds = [], []
    for fr, lab in clips:
        ins.append(sample(fr, train_mode))
        d = ActionDataSample(); d.set_gt_label(torch.tensor([lab])); ds.append(d)
    return model.data_preprocessor({"inputs": ins, "data_samples": ds}, training=train_mode)

def evaluate(clips):
    from petaction.core.metrics import topk
    model.eval(); scores, labels = [], []
    with torch.no_grad():
        for i in range(0, len(clips), 32):
            b = batch(clips[i:i + 32], False)
            out = model(b["inputs"], b["data_samples"], mode="predict")
            scores += [o.pred_score.numpy() for o in out]
            labels += [int(o.gt_label) for o in out]
    model.train(); return topk(np.stack(scores), np.array(labels), 1)

steps, B = spec["steps"], spec.get("batch", 16)
opt_name = spec.get("opt", "AdamW")
if opt_name == "AdamW":
    opt = torch.optim.AdamW(model.parameters(), lr=spec["lr"], weight_decay=spec.get("wd", 0.05))
else:
    opt = torch.optim.SGD(model.parameters(), lr=spec["lr"], momentum=0.9, weight_decay=spec.get("wd", 1e-4), nesterov=True)
if spec.get("sched", "onecycle") == "onecycle":
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=spec["lr"], total_steps=steps, pct_start=spec.get("pct", 0.15))
else:  # petaction's: linear warm-up from 0.1 x lr over pct of the steps, then cosine to 0
    w = int(spec.get("pct", 0.08) * steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.1 + 0.9 * i / max(w, 1) if i < w else 0.5 * (1 + math.cos(math.pi * (i - w) / max(steps - w, 1))))
log = {"spec": spec, "K": K, "params_m": sum(q.numel() for q in model.parameters()) / 1e6, "curve": [], "val": []}
lnK = math.log(K); ema = lnK; first_below = None
order = []
t0 = time.process_time(); w0 = time.time()
model.train()
for step in range(1, steps + 1):
    if not order:
        order = list(rng.permutation(len(train)))
    idx = [order.pop() for _ in range(min(B, len(order)))]
    b = batch([train[i] for i in idx], True)
    losses = model(b["inputs"], b["data_samples"], mode="loss")
    loss = sum(v for k, v in losses.items() if "loss" in k)
    opt.zero_grad(); loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), spec.get("clip", 40))
    opt.step()
    if sched: sched.step()
    ema = 0.95 * ema + 0.05 * float(loss)
    if first_below is None and ema < 0.8 * lnK:
        first_below = step
    if step % 50 == 0:
        log["curve"].append((step, round(ema, 3), round(time.process_time() - t0, 1)))
    if step % spec.get("val_every", 200) == 0 or step == steps:
        log["val"].append((step, round(evaluate(val), 3)))
        print(spec.get("name"), step, round(ema, 3), log["val"][-1], round(time.process_time() - t0), flush=True)
log["first_below"] = first_below
log["cpu_s"] = round(time.process_time() - t0, 1); log["wall_s"] = round(time.time() - w0, 1)
log["s_per_step"] = round(log["cpu_s"] / steps, 3)
if test:
    log["test"] = evaluate(test)
print("RESULT", json.dumps(log), flush=True)
if spec.get("out"):
    json.dump(log, open(spec["out"], "w"))
