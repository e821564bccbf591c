"""Frame-level heads over Whisper-base hidden states 0..4 vs the pooled linear probe, held-out speakers.

Question: does a head that sees every frame (learned layer weights, attentive
statistics pooling) beat the shipped recipe (mean+std over frames of states
0..4, standardised, logistic regression C=1e-3) under held-out speakers?

Features: ``experiments/whisper/frames_extract.py`` (product path, 50 Hz, fp16).
Here pairs of frames are averaged to 25 Hz (to halve the head's CPU cost; the
mean over frames is unchanged, the std slightly smoothed).

Heads (``--head``), trained per outer fold on the training speakers only,
with ONE recipe fixed before any run (no choice looks at the test fold, no inner CV):

- ``attn``: softmax-weighted sum of the 5 states (each state standardised per
  channel with training-frame statistics) -> Linear(512, d) + ReLU + dropout ->
  attentive statistics pooling (Okabe et al. 2018: attention-weighted mean and
  std over frames; attention = Linear(d, 64)-tanh-Linear(64, 1)) -> dropout ->
  Linear(2d, classes);
- ``mean``: the same with plain mean+std pooling (isolates the attention);
- ``conv``: ``attn`` with a residual 1-D conv (kernel 5, d channels, ReLU) over frames before pooling.

Fixed training recipe: d=128, dropout 0.3, AdamW lr 1e-3 weight decay 1e-2,
batch 32 clips, 15 epochs, 1 warm-up epoch then cosine decay, class-balanced
cross-entropy, seed 0, CPU, one thread.

Every run also fits the baseline (the library's ``fit_head``, states 0..4,
C=1e-3, as ``heads.py``) on the same folds, and reports ``fusion``: the mean of
the baseline's and the head's class probabilities (fixed weights 0.5/0.5).
Results: one JSON line per run in ``/tmp/emovox-research/frames/results.jsonl``;
test logits in ``/tmp/emovox-research/frames/logits_<protocol>_<head>.npz``.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python experiments/whisper/frames.py --protocol all7 --head attn
    .venv/bin/python experiments/whisper/frames.py --table
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import heads as pooled_heads  # noqa: E402
import pooled_data  # noqa: E402

FRAMES = pooled_data.OUT / "frames"
RESULTS = FRAMES / "results.jsonl"
N_STATES = 5


def load_frames(pool2: bool = True):
    """(frames tensor fp16 (N, 5, 512), offsets (n_clips + 1,)) in pooled_data.load() row order; 25 Hz if pool2."""
    parts, offsets, base = [], [0], 0
    for corpus in pooled_data.CORPORA:
        meta = json.loads((FRAMES / f"{corpus}.json").read_text())
        mm = np.load(FRAMES / f"{corpus}.npy", mmap_mode="r")
        off = meta["offsets"]
        for i in range(len(off) - 1):
            h = np.asarray(mm[off[i] : off[i + 1]], dtype=np.float32)
            if pool2:
                n = len(h)
                h2 = h[: n - n % 2].reshape(n // 2, 2, *h.shape[1:]).mean(1)
                h = np.concatenate([h2, h[n - n % 2 :]]) if n % 2 else h2
            parts.append(h.astype(np.float16))
            base += len(h)
            offsets.append(base)
    return torch.from_numpy(np.concatenate(parts)), np.array(offsets)


class FrameHead(nn.Module):
    """Frames ``(B, T, 5, 512)`` + mask ``(B, T)`` -> logits; see the module docstring."""

    def __init__(
        self,
        n_classes: int,
        mu: torch.Tensor,
        sd: torch.Tensor,
        *,
        pooling: str = "attn",
        d: int = 128,
        dropout: float = 0.3,
        conv: bool = False,
    ) -> None:
        super().__init__()
        self.register_buffer("mu", mu.float())
        self.register_buffer("inv_sd", 1.0 / sd.float())
        self.layer_logits = nn.Parameter(torch.zeros(mu.shape[0]))
        self.proj = nn.Sequential(nn.Linear(mu.shape[1], d), nn.ReLU(), nn.Dropout(dropout))
        self.conv = nn.Conv1d(d, d, 5, padding=2) if conv else None
        self.pooling = pooling
        if pooling == "attn":
            self.att = nn.Sequential(nn.Linear(d, 64), nn.Tanh(), nn.Linear(64, 1))
        self.out = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * d, n_classes))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        w = torch.softmax(self.layer_logits, 0)
        scale = w[:, None] * self.inv_sd  # (5, 512): standardise then weight, in one pass over x
        h = (x * scale).sum(2) - (scale * self.mu).sum(0)
        h = self.proj(h)
        m = mask[..., None].float()
        if self.conv is not None:
            h = h + F.relu(self.conv((h * m).transpose(1, 2))).transpose(1, 2)
        if self.pooling == "attn":
            e = self.att(h).squeeze(-1).masked_fill(~mask, -1e9)
            a = torch.softmax(e, 1)[..., None]
        else:
            a = m / m.sum(1, keepdim=True)
        mean = (a * h).sum(1)
        var = (a * h * h).sum(1) - mean * mean
        return self.out(torch.cat([mean, torch.sqrt(var.clamp_min(1e-6))], 1))


def batch(frames, offsets, rows):
    lens = offsets[rows + 1] - offsets[rows]
    t = int(lens.max())
    x = torch.zeros(len(rows), t, *frames.shape[1:])
    mask = torch.zeros(len(rows), t, dtype=torch.bool)
    for i, (r, n) in enumerate(zip(rows, lens)):
        x[i, :n] = frames[offsets[r] : offsets[r] + n].float()
        mask[i, :n] = True
    return x, mask


def length_batches(rows, offsets, size, rng):
    """Shuffled batches of clips of similar length (sorted within chunks of 20 batches) to limit padding."""
    rows = rng.permutation(rows)
    out = []
    for s in range(0, len(rows), size * 20):
        chunk = rows[s : s + size * 20]
        chunk = chunk[np.argsort(offsets[chunk + 1] - offsets[chunk], kind="stable")]
        out += [chunk[i : i + size] for i in range(0, len(chunk), size)]
    return [out[i] for i in rng.permutation(len(out))]


def fit_frame_head(args, frames, offsets, sums, rows, y, n_classes):
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    n = float((offsets[rows + 1] - offsets[rows]).sum())
    mu = sums[rows, 0].sum(0) / n
    sd = np.sqrt(np.maximum(sums[rows, 1].sum(0) / n - mu**2, 1e-8))
    model = FrameHead(
        n_classes,
        torch.from_numpy(mu),
        torch.from_numpy(sd),
        pooling="mean" if args.head == "mean" else "attn",
        d=args.d,
        dropout=args.dropout,
        conv=args.head == "conv",
    )
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    weight = torch.tensor(np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0), dtype=torch.float32)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.wd)
    steps_per_epoch = math.ceil(len(rows) / args.batch)
    total, warm = args.epochs * steps_per_epoch, steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm)))
    )
    pos = {r: i for i, r in enumerate(rows)}
    model.train()
    for _epoch in range(args.epochs):
        for b in length_batches(rows, offsets, args.batch, rng):
            x, mask = batch(frames, offsets, b)
            loss = F.cross_entropy(model(x, mask), torch.from_numpy(y[[pos[r] for r in b]]), weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


def predict(model, frames, offsets, rows):
    out = np.zeros((len(rows), model.out[1].out_features), np.float32)
    order = np.argsort(offsets[rows + 1] - offsets[rows])
    with torch.inference_mode():
        for s in range(0, len(order), 64):
            idx = order[s : s + 64]
            x, mask = batch(frames, offsets, rows[idx])
            out[idx] = model(x, mask).numpy()
    return out


def metrics(y, logits, corpus, classes):
    from emovox.evaluation import compute_metrics

    pred = logits.argmax(1)
    m = compute_metrics(y, pred, classes=list(classes))
    per = {
        c: compute_metrics(y[corpus == c], pred[corpus == c], classes=list(classes))["uar"] for c in sorted(set(corpus))
    }
    return {"uar": float(m["uar"]), "acc": float(m["accuracy"]), "per_corpus": per}


def run(args) -> dict:
    from emovox.recipes.whisper import fit_head

    torch.set_num_threads(1)
    t_start = time.process_time()
    data = pooled_data.load()
    mask, y, classes, splits, mapping = pooled_heads.protocol_rows(args.protocol, data)
    glob = np.flatnonzero(mask)  # protocol row -> global clip row
    sub = data.subset(mask)
    frames, offsets = load_frames()
    # per-clip sums over frames of every state/channel (fp64): training statistics per fold without a pass over frames
    sums = np.zeros((len(offsets) - 1, 2, N_STATES, frames.shape[2]))
    for i in range(len(offsets) - 1):
        h = frames[offsets[i] : offsets[i + 1]].double()
        sums[i, 0], sums[i, 1] = h.sum(0).numpy(), (h * h).sum(0).numpy()
    print(
        f"loaded {frames.shape[0]} frames ({frames.numel() * 2 / 1e9:.2f} GB), {time.process_time() - t_start:.0f} "
        f"CPU s",
        flush=True,
    )
    folds, saved = [], {}
    for f, split in enumerate(splits):
        if args.folds and f not in args.folds:
            continue
        tr, te = np.asarray(split.train_idx), np.asarray(split.test_idx)
        t0 = time.process_time()
        base = fit_head(
            sub.x[tr],
            y[tr],
            list(sub.speaker[tr]),
            n_classes=len(classes),
            head="linear",
            layers=list(range(N_STATES)),
            head_options={"Cs": (1e-3,)},
            inner_cv=False,
            seed=args.seed,
        )
        lb = base.logits(sub.x[te])
        t1 = time.process_time()
        model = fit_frame_head(args, frames, offsets, sums, glob[tr], y[tr], len(classes))
        t2 = time.process_time()
        lh = predict(model, frames, offsets, glob[te])
        fused = np.log(
            0.5 * torch.softmax(torch.from_numpy(lb).float(), 1).numpy()
            + 0.5 * torch.softmax(torch.from_numpy(lh), 1).numpy()
            + 1e-12
        )
        row = {
            "fold": split.name,
            "n_train": int(len(tr)),
            "n_test": int(len(te)),
            "baseline": metrics(y[te], lb, sub.corpus[te], classes),
            "head": metrics(y[te], lh, sub.corpus[te], classes),
            "fusion": metrics(y[te], fused, sub.corpus[te], classes),
            "layer_weights": [round(float(v), 3) for v in torch.softmax(model.layer_logits.detach(), 0)],
            "cpu_s_baseline": round(t1 - t0, 1),
            "cpu_s_head": round(t2 - t1, 1),
        }
        folds.append(row)
        saved[f"fold{f}_test"], saved[f"fold{f}_base"], saved[f"fold{f}_head"] = te, lb, lh
        print(
            f"  {args.protocol} {split.name}: baseline {row['baseline']['uar']:.3f} head {row['head']['uar']:.3f} "
            f"fusion {row['fusion']['uar']:.3f}  w={row['layer_weights']}  cpu base {row['cpu_s_baseline']:.0f} s "
            f"head {row['cpu_s_head']:.0f} s",
            flush=True,
        )
    summary = {}
    for k in ("baseline", "head", "fusion"):
        u = np.array([r[k]["uar"] for r in folds])
        a = np.array([r[k]["acc"] for r in folds])
        corpora = sorted({c for r in folds for c in r[k]["per_corpus"]})
        summary[k] = {
            "uar": float(u.mean()),
            "uar_std": float(u.std(ddof=1)) if len(u) > 1 else float("nan"),
            "acc": float(a.mean()),
            "per_fold": [float(v) for v in u],
            "per_corpus": {
                c: float(np.mean([r[k]["per_corpus"][c] for r in folds if c in r[k]["per_corpus"]])) for c in corpora
            },
        }
    result = {
        "protocol": args.protocol,
        "head": args.head,
        "d": args.d,
        "dropout": args.dropout,
        "lr": args.lr,
        "wd": args.wd,
        "epochs": args.epochs,
        "batch": args.batch,
        "seed": args.seed,
        "folds_run": args.folds,
        "summary": summary,
        "folds": folds,
        "cpu_s": round(time.process_time() - t_start),
        "when": time.strftime("%H:%M"),
    }
    with open(RESULTS, "a") as handle:
        handle.write(json.dumps(result) + "\n")
    np.savez(FRAMES / f"logits_{args.protocol}_{args.head}.npz", **saved)
    return result


def table() -> None:
    print(
        "| protocol | head | recipe | UAR mean ± std | acc | per fold | per corpus | baseline same folds | "
        "fusion (0.5/0.5) | CPU s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for line in RESULTS.read_text().splitlines():
        r = json.loads(line)
        s = r["summary"]

        def cell(k):
            return f"{s[k]['uar']:.3f} ± {s[k]['uar_std']:.3f}"  # noqa: B023 - called at once, inside the loop

        pc = " ".join(f"{c[:3]} {v:.3f}" for c, v in s["head"]["per_corpus"].items())
        print(
            f"| {r['protocol']} | {r['head']} | d{r['d']} do{r['dropout']} lr{r['lr']} ep{r['epochs']} | "
            f"{cell('head')} | {s['head']['acc']:.3f} | {' '.join(f'{v:.2f}' for v in s['head']['per_fold'])} | "
            f"{pc} | {cell('baseline')} acc {s['baseline']['acc']:.3f} "
            f"({' '.join(f'{v:.2f}' for v in s['baseline']['per_fold'])}; "
            f"{' '.join(f'{c[:3]} {v:.3f}' for c, v in s['baseline']['per_corpus'].items())}) | "
            f"{cell('fusion')} acc {s['fusion']['acc']:.3f} ({' '.join(f'{v:.2f}' for v in s['fusion']['per_fold'])}) "
            f"| {r['cpu_s']} |"
        )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocol", choices=(*pooled_heads.NATIVE, "all7", "loco"), default="all7")
    ap.add_argument("--head", choices=("attn", "mean", "conv"), default="attn")
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--dropout", type=float, default=0.3)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--wd", type=float, default=1e-2)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--folds",
        type=lambda s: [int(i) for i in s.split(",")],
        default=None,
        help="only these outer folds (timing pilots)",
    )
    ap.add_argument("--table", action="store_true")
    args = ap.parse_args(argv)
    if args.table:
        table()
        return 0
    r = run(args)
    s = r["summary"]
    print(
        f"{r['protocol']} {r['head']}: head {s['head']['uar']:.3f} ± {s['head']['uar_std']:.3f} "
        f"(acc {s['head']['acc']:.3f}) | baseline {s['baseline']['uar']:.3f} ± {s['baseline']['uar_std']:.3f} "
        f"(acc {s['baseline']['acc']:.3f}) | fusion {s['fusion']['uar']:.3f} ± {s['fusion']['uar_std']:.3f}; "
        f"per corpus head {s['head']['per_corpus']} baseline {s['baseline']['per_corpus']}; {r['cpu_s']} CPU s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
