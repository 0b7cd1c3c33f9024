"""Why does a converged mini-trained DCNN not generalise? Measured, one candidate at a time.

Each variant trains the DCNN on sym5 level-8 packets of A_ljspeech vs B_melgan (the mini
protocol, ``configs/mini.yaml``) with the same seed, split and step budget, changing one
preprocessing or data choice; every variant is then scored on the test split of every
folder with its best-validation checkpoint *and* its last-epoch checkpoint (the paper
keeps the last epoch). Printed and written to ``--out/why.md``: validation EER, seen
(MelGAN) test EER and the mean EER over the unseen folders, for both checkpoints.

Candidates (``--variants``, comma-separated; default all):

* ``baseline``     the mini protocol: unit-RMS frames, log |c|, per-band mean/std.
* ``no_level_norm`` frames as recorded (the reference has no level normalisation).
* ``power2``       log |c|**2 (log power, as the reference) instead of log |c|.
* ``global_norm``  one scalar mean/std over all bands (the reference) instead of per band.
* ``reference``    all three of the reference's choices together.
* ``half_data``    the baseline on half the training frames (trend of training-set size).

``global_norm`` is implemented here, not in gpwave: the per-band statistics the trainer
fits are folded into one scalar mean and std (the exact pooled moments), written back into
every band of the normaliser, so the checkpoint loads as any other.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/why_generalize.py \
        --data $GPWAVE_DATA/wavefake-mini --out results/why --epochs 5
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml

from gpwave import config, evaluate, frames, hub, report, train

REPO = Path(__file__).resolve().parents[1]
REFERENCE = {"level_norm": False, "feature": {"power": 2.0}, "global_norm": True}
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "no_level_norm": {"level_norm": False},
    "power2": {"feature": {"power": 2.0}},
    "global_norm": {"global_norm": True},
    "reference": REFERENCE,
    "half_data": {"half_data": True},
}


def globalise(normalizer: torch.nn.Module) -> None:
    """Replace per-band mean/std by the pooled scalar mean/std of all bands, in place."""
    mean, m2, n = normalizer.mean, normalizer.m2, normalizer.count
    grand = mean.mean()  # every band has the same count
    var = (m2 / n).mean() + ((mean - grand) ** 2).mean()
    normalizer.mean.fill_(float(grand))
    normalizer.std.fill_(float(var.sqrt().clamp_min(normalizer.min_std)))


def _fit_global(det, store, rows, device, batch=64):
    _FIT(det, store, rows, device, batch)
    globalise(det.normalizer)


_FIT = frames.fit_normalizer


def summary(table: pd.DataFrame, seen: str) -> dict[str, float]:
    """Seen-generator EER and mean / max EER over the unseen folders."""
    t = table.set_index("generator")["eer"]
    unseen = t.drop([seen, report.POOLED], errors="ignore")
    return {"seen_eer": float(t[seen]), "unseen_mean": float(unseen.mean()),
            "unseen_max": float(unseen.max())}  # fmt: skip


def run_variant(name: str, base: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Train one variant, score best and last checkpoints, return one summary row."""
    spec = dict(VARIANTS[name])
    raw = json.loads(json.dumps(base))
    raw["feature"] = {**raw.get("feature", {}), **spec.pop("feature", {})}
    global_norm = spec.pop("global_norm", False)
    half = spec.pop("half_data", False)
    raw.update(spec)
    raw["compile"] = args.compile
    raw.update(data_dir=str(args.data), epochs=args.epochs, threads=args.threads,
               progress=False, n_boot=0, eval_test=False, seeds=[args.seed])  # fmt: skip
    if half:
        raw["limit_train"] = args.half_frames
    cfg = config.TrainConfig.from_dict(raw)
    run_dir = Path(args.out) / name
    frames.fit_normalizer = _fit_global if global_norm else _FIT
    t0 = time.perf_counter()
    m = train.train_one(cfg, run_dir, seed=args.seed)
    seconds = time.perf_counter() - t0
    frames.fit_normalizer = _FIT
    store = frames.protocol_store(raw, args.data)
    row: dict[str, Any] = {
        "variant": name,
        "n_train": m["n_train_frames"],
        "best_epoch": m["best"]["epoch"],
        "val_eer": m["best"]["val_eer"],
        "last_val_eer": m["history"][-1]["val_eer"],
        "seconds": seconds,
    }
    for ck in ("best", "last"):
        det = hub.resolve(run_dir / f"{ck}.pt")
        table = evaluate.score_split(
            det, store, "test", seen=[cfg.train_generator], n_boot=0, seed=args.seed
        )
        table.to_csv(run_dir / f"test_{ck}.csv", index=False)
        row.update({f"{ck}_{k}": v for k, v in summary(table, cfg.train_generator).items()})
    return row


def main() -> None:
    """Run the chosen variants in order; rewrite the table after each."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="the wavefake-mini folder")
    p.add_argument("--out", type=Path, default=Path("results/why"))
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-compile", dest="compile", action="store_false")
    p.add_argument("--half-frames", type=int, default=160, help="frames per class, half_data")
    args = p.parse_args()
    base = yaml.safe_load((REPO / "configs" / "mini.yaml").read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.variants.split(","):
        rows.append(run_variant(name, base, args))
        df = pd.DataFrame(rows)
        print(df.to_string(float_format=lambda v: f"{v:.3f}"), flush=True)
        (args.out / "why.md").write_text(df.to_markdown(index=False, floatfmt=".3f"))
        (args.out / "why.json").write_text(df.to_json(orient="records", indent=1))
    print(f"seed {args.seed}, {args.epochs} epochs, torch threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
