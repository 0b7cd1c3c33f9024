"""Peak memory and time of ``detect`` on a long file: streamed vs decoded at once.

Writes a synthetic stereo 44.1 kHz recording (white noise with silent gaps; 10 minutes
by default) to a temporary folder, scores it in a fresh process per mode, prints peak
resident memory (``ru_maxrss``) and wall time of each, and deletes the file:

- ``streamed``: :func:`gpwave.detect.detect_files`, which reads, resamples and scores
  the file in blocks of :data:`gpwave.detect.BLOCK_WINDOWS` windows;
- ``whole``: the way ``detect`` worked before, ``frame_audio(load_audio(file))`` then
  :func:`gpwave.evaluate.score_waveforms` over every window at once.

The detector is an untrained ``linear`` model on 1 s wavelet-packet features: its scores
do not matter here, only the cost of reading, resampling and transforming. Peak memory
of the streamed mode does not grow with the file's length; of the whole mode it does.

Run: ``python benchmarks/bench_detect.py [--minutes 10]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf


def _write(path: Path, minutes: float, rate: int = 44100) -> None:
    """Write the recording block by block (never the whole signal in memory)."""
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", rate, 2, subtype="PCM_16") as fh:
        for second in range(int(minutes * 60)):
            amp = 0.0 if second % 10 == 9 else 0.1  # one silent second in ten
            fh.write((amp * rng.standard_normal((rate, 2))).astype(np.float32))


def _detector():
    import torch

    from gpwave.models import Detector
    from gpwave.transforms import FeatureConfig

    torch.manual_seed(0)
    return Detector(FeatureConfig(), "linear", 22050).eval()


def _run(mode: str, path: Path) -> dict:
    """Score ``path`` in this process; return the peak memory and the time."""
    det = _detector()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    if mode == "streamed":
        from gpwave.detect import detect_files

        (rep,) = detect_files(det, [path], device="cpu", progress=False)
        n = len(rep.scores)
    else:
        from gpwave.data import frame_audio, load_audio
        from gpwave.evaluate import score_waveforms

        frames = frame_audio(load_audio(path, 22050), det.n_samples)
        n = len(score_waveforms(det, frames, device="cpu", kind="probability"))
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "mode": mode,
        "windows": n,
        "seconds": round(wall, 2),
        "peak_rss_mb": round(peak / 1024, 1),
        "growth_mb": round((peak - base) / 1024, 1),
    }


def main() -> None:
    """Parse arguments, write the file, time both modes in child processes, clean up."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0, help="length of the recording")
    p.add_argument("--mode", choices=["streamed", "whole"], help=argparse.SUPPRESS)
    p.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.mode:  # child process: one mode
        print(json.dumps(_run(args.mode, args.file)))
        return
    with tempfile.TemporaryDirectory(prefix="bench_detect_") as tmp:
        path = Path(tmp) / "long.wav"
        _write(path, args.minutes)
        size = path.stat().st_size / 2**20
        print(f"{args.minutes:g} min stereo 44.1 kHz 16-bit: {size:.0f} MiB on disk")
        for mode in ("streamed", "whole"):
            cmd = [sys.executable, __file__, "--mode", mode, "--file", str(path)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=os.environ)
            print(json.loads(out.stdout.strip().splitlines()[-1]))
    # the temporary folder and the file are deleted here


if __name__ == "__main__":
    main()
