"""How often are ``gpwave detect``'s file verdicts wrong, with and without calibration?

A detector's EER says how well its scores rank; a user of ``gpwave detect`` reads its
verdicts (fake if the mean fake probability of a file's scorable windows is at least
0.5). This prints, per test set, the share of real files called fake and of fake files
called real, once with the detector's calibration (``Detector.calibration``, fitted by
training on validation) and once with the plain softmax. Test sets only: the trees of
speakers-tts-mini and the mini benchmark's test split (configs/mini.yaml).

Run: ``python benchmarks/verdict_errors.py --model gpwave-speakers`` (``$GPWAVE_DATA``
holds the data and the published model; a checkpoint path works too).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from gpwave import curves, data
from gpwave.config import load_yaml
from gpwave.detect import detect_files
from gpwave.hub import resolve

REPO = Path(__file__).resolve().parents[1]


def test_files(root: Path) -> dict[str, list[str]]:
    """Audio files of each test set under the data folder ``root``."""
    tts_mini = root / "speakers-tts-mini"
    sets = {f"speakers-tts-mini {t}": sorted(map(str, (tts_mini / t).glob("*/*.wav")))
            for t in ("vctk", "tts")}  # fmt: skip
    mini = curves.file_tree(root / "wavefake-mini", "mini")
    folders = load_yaml(REPO / "configs" / "mini.yaml")["only_test_folders"]
    cfg = data.DataConfig(root=root / "wavefake-mini", only_test_folders=folders)
    sets["wavefake-mini test split"] = sorted(mini[data.assign_splits(mini, cfg) == "test"]["file"])
    return {name: files for name, files in sets.items() if files}


def errors(det, files: list[str]) -> tuple[int, float, int, float]:
    """Real files, share called fake, fake files, share called real (folder ``A_*`` is real)."""
    real = np.array([Path(f).parent.name.startswith("A_") for f in files])
    fake = np.array([r.verdict == "fake" for r in detect_files(det, files, progress=False)])
    return (
        int(real.sum()),
        float(fake[real].mean()),
        int((~real).sum()),
        float((~fake[~real]).mean()),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="gpwave-speakers", help="a model name or checkpoint")
    ap.add_argument("--data", default=os.environ.get("GPWAVE_DATA", "data"), type=Path)
    args = ap.parse_args()
    det = resolve(args.model)
    fitted = det.calibration
    print(f"{args.model}: calibration {fitted}")
    for name, files in test_files(args.data).items():
        for label, calibration in (("calibrated", fitted), ("softmax", None)):
            if label == "calibrated" and fitted is None:
                continue
            det.calibration = calibration
            n_real, fpr, n_fake, fnr = errors(det, files)
            print(f"{name:26s} {label:10s} real files {n_real:3d} called fake {100 * fpr:5.1f} %"
                  f"  fake files {n_fake:3d} called real {100 * fnr:5.1f} %")  # fmt: skip
    det.calibration = fitted


if __name__ == "__main__":
    main()
