"""Side by side: the paper's sym5 DCNN vs gpwave-robust under perturbations (mini benchmark).

Two tables, both on the mini benchmark (``configs/mini.yaml`` split):

1. EER under each perturbation of :data:`gpwave.perturb.ROBUSTNESS_CONDITIONS`, with a
   95 % utterance-bootstrap CI: ``--frames`` real frames of the A_ljspeech test split vs
   as many fake frames pooled over the WaveFake-style folders B-T (B's test split, every
   frame of C-T), one fixed sample (``--seed``) scored by every detector
   (:func:`gpwave.evaluate.perturbed_eers`). ``--split val`` uses the validation split
   instead (A vs B only; what a recipe may be chosen on).
2. Clean per-folder EER on B-T, as chapter 04 scores the paper models (every real test
   frame vs each folder's test frames, :func:`gpwave.evaluate.score_split`).

Detectors are names (``gpwave models``) or checkpoint paths::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/robustness.py \\
        --data $GPWAVE_DATA/wavefake-mini --models paper-sym5 gpwave-robust
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from gpwave import evaluate, pretrained, train
from gpwave.models import Detector

REPO = Path(__file__).resolve().parents[1]
#: The WaveFake-style folders (LJSpeech-trained vocoders); U-Z are other speakers/corpora.
WAVEFAKE_FOLDERS = tuple("BCDEFGHKOPQRST")


def load(name: str) -> Detector:
    """A named detector (``gpwave models``) or a checkpoint file."""
    return Detector.load(name) if Path(name).is_file() else pretrained.named_detector(name)


def sample(store, split: str, n: int, seed: int) -> pd.DataFrame:
    """``n`` real frames of A and ``n`` fake frames pooled over B-T (``val``: B) of a split."""
    idx = store.index
    letter = idx["folder"].str[0]
    real = idx[(letter == "A") & (idx["split"] == split)]
    fake = idx[letter.isin(WAVEFAKE_FOLDERS[1:]) & (idx["split"] == split)]
    rng = np.random.default_rng(seed)
    pick = [
        d.iloc[np.sort(rng.choice(len(d), min(n, len(d)), replace=False))] for d in (real, fake)
    ]
    return pd.concat(pick)


def side_by_side(table: pd.DataFrame, value: str = "condition") -> pd.DataFrame:
    """One row per ``value``, one ``EER [CI]`` column per detector."""
    cell = table.assign(
        text=[f"{e:.3f} [{lo:.3f}, {hi:.3f}]" for e, lo, hi in
              table[["eer", "eer_ci_low", "eer_ci_high"]].to_numpy()]
    )  # fmt: skip
    return cell.pivot(index=value, columns="detector", values="text").loc[
        list(dict.fromkeys(table[value]))
    ]


def per_folder(dets: dict[str, Detector], store, n_boot: int) -> pd.DataFrame:
    """Clean EER of every WaveFake-style folder (B-T) for each detector, and B-T pooled."""
    folders = sorted({f for f in store.index["folder"] if f[0] in WAVEFAKE_FOLDERS})
    name = {f.split("_", 1)[1]: f for f in folders}
    name[evaluate.POOLED] = "pooled B-T"
    tables = []
    for label, det in dets.items():
        t = evaluate.score_split(det, store, "test", [f.split("_", 1)[1] for f in folders],
                                 n_boot=n_boot)  # fmt: skip
        tables.append(t.assign(detector=label, folder=t["generator"].map(name)))
    return pd.concat(tables)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="mini benchmark folder")
    ap.add_argument("--models", nargs="+", default=["paper-sym5", "gpwave-robust"])
    ap.add_argument("--split", default="test", choices=["test", "val"])
    ap.add_argument("--frames", type=int, default=64, help="real and fake frames per condition")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--no-folders", action="store_true", help="skip the per-folder table")
    args = ap.parse_args()
    data = args.data or train.resolve_path("${GPWAVE_DATA}/wavefake-mini")
    store = train.protocol_store(REPO / "configs/mini.yaml", data)
    dets = {name: load(name) for name in args.models}
    frames = sample(store, args.split, args.frames, args.seed)
    table = evaluate.perturbed_eers(
        dets, store.read(frames["row"].to_numpy()), frames["label"], frames["utterance"],
        store.sample_rate, n_boot=args.n_boot, seed=args.seed, progress=True,
    )  # fmt: skip
    n_real, n_fake = int((frames["label"] == 0).sum()), int(frames["label"].sum())
    print(f"EER under perturbation ({args.split}: {n_real} real A vs {n_fake} fake frames, "
          f"seed {args.seed}, 95 % utterance-bootstrap CI)\n")  # fmt: skip
    print(side_by_side(table).to_markdown())
    if args.split == "test" and not args.no_folders:
        folders = per_folder(dets, store, args.n_boot)
        print("\nClean EER per WaveFake-style folder (A test vs each folder's test frames)\n")
        print(side_by_side(folders, "folder").to_markdown())


if __name__ == "__main__":
    main()
