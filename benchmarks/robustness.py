"""Side by side: detectors (released, published or trained) under perturbations (mini benchmark).

Two tables, both on the mini benchmark (``configs/mini.yaml`` split):

1. EER under each perturbation of :data:`SWEEP`, with a 95 % utterance-bootstrap CI:
   ``--clips`` real utterances of the A_ljspeech test split and as many fake ones spread
   over the WaveFake-style folders B-T (B's test split, C-T), perturbed whole and cut into
   ``--frames-per-clip`` frames, scored by every detector on the same frames
   (:func:`gpwave.robustness.perturbation_sweep`, as chapter 07 does). ``--split val``
   uses the validation split instead (A vs B only; what a recipe may be chosen on).
2. Clean per-folder EER on B-T, as chapter 04 scores the paper models (every real test
   frame vs each folder's test frames, :func:`gpwave.evaluate.score_split`).

Detectors are names (``gpwave models``) or checkpoint paths::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/robustness.py \\
        --data $GPWAVE_DATA/wavefake-mini --models paper-sym5 paper-stft runs/x/seed0/best.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from gpwave import config, evaluate, hub, report, robustness
from gpwave.frames import protocol_store
from gpwave.models import Detector

REPO = Path(__file__).resolve().parents[1]
#: The WaveFake-style folders (LJSpeech-trained vocoders); U-Z are other speakers/corpora.
WAVEFAKE_FOLDERS = tuple("BCDEFGHKOPQRST")
#: The perturbations the detectors are compared on: kind -> strengths.
SWEEP = {
    "gain": [-24, 12], "white-noise": [20, 10], "pink-noise": [20, 10],
    "resample": [16000, 8000], "mp3": [64, 32], "ogg-opus": [16], "ogg-vorbis": [0.0],
    "lowpass": [4000],
}  # fmt: skip


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
    name[report.POOLED] = "pooled B-T"
    tables = []
    for label, det in dets.items():
        t = evaluate.score_split(det, store, "test", [f.split("_", 1)[1] for f in folders],
                                 n_boot=n_boot)  # fmt: skip
        tables.append(t.assign(detector=label, folder=t["generator"].map(name)))
    return pd.concat(tables)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="mini benchmark folder")
    ap.add_argument("--models", nargs="+", default=["paper-sym5", "paper-stft"])
    ap.add_argument("--split", default="test", choices=["test", "val"])
    ap.add_argument("--clips", type=int, default=32, help="real and fake utterances")
    ap.add_argument("--frames-per-clip", type=int, default=2, help="1 s frames per utterance")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--no-folders", action="store_true", help="skip the per-folder table")
    args = ap.parse_args()
    data = args.data or config.resolve_path("${GPWAVE_DATA}/wavefake-mini")
    store = protocol_store(REPO / "configs/mini.yaml", data)
    dets = {name: hub.resolve(name) for name in args.models}
    fakes = WAVEFAKE_FOLDERS[1:] if args.split == "test" else ("B",)
    folders = sorted({f for f in store.index["folder"] if f[0] in fakes})
    clips = robustness.sweep_clips(store.index, args.clips, args.clips, folders, args.split,
                                   args.seed)  # fmt: skip
    audio = robustness.load_clips(clips["file"], args.frames_per_clip)
    table, frames = robustness.perturbation_sweep(
        dets, clips, audio, SWEEP, args.frames_per_clip, args.n_boot, args.seed, progress=True
    )
    table["condition"] = [robustness.condition_label(k, v) for k, v in
                          table[["kind", "strength"]].to_numpy()]  # fmt: skip
    clean = frames[frames["kind"] == robustness.CLEAN]
    n_real, n_fake = int((clean["label"] == 0).sum()), int(clean["label"].sum())
    print(f"EER under perturbation ({args.split}: {n_real} real A vs {n_fake} fake frames of "
          f"{len(clips)} utterances, seed {args.seed}, 95 % utterance-bootstrap CI)\n")  # fmt: skip
    print(side_by_side(table).to_markdown())
    if args.split == "test" and not args.no_folders:
        folders = per_folder(dets, store, args.n_boot)
        print("\nClean EER per WaveFake-style folder (A test vs each folder's test frames)\n")
        print(side_by_side(folders, "folder").to_markdown())


if __name__ == "__main__":
    main()
