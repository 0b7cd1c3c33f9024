"""Generalisation benchmark of the detectors on the mini benchmark (one script, one run).

Protocol: train A_ljspeech vs B_melgan, test every other folder; seeds 0-2 by default.
Models: DCNN on sym5 packets, DCNN on STFT, DCNN without dilation, LCNN (on LFCC, the
ASVspoof baseline's input), LFCC-GMM and the linear probe on the mean log packet
spectrum. Prints (and writes under --out) the per-generator table, mean +- std over
seeds, the wall time of each training run (the DCNN one is 10 epochs) and the inference
speed of detection in seconds of audio per second. Runs are ordered seed by seed, cheap
models first, and the tables are rewritten after every run, so a partial run still
leaves complete tables for the seeds it finished. ``--resume`` skips finished runs.

    python benchmarks/bench_detectors.py --data data/wavefake-mini --out results/bench
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import torch
import yaml

from gpwave import config, detect, evaluate, hub, report, train
from gpwave.models import count_parameters

REPO = Path(__file__).resolve().parents[1]

DETECTORS = {
    # A linear probe needs many more steps than 10 epochs of 6 batches at lr 4e-4 to converge.
    "linear_packets": {
        "model": "linear",
        "feature": {"kind": "packets"},
        "lr": 0.01,
        "epochs": 100,
    },
    "lfcc_gmm": {"model": "gmm", "feature": {"kind": "lfcc"}},
    "lcnn_lfcc": {"model": "lcnn", "feature": {"kind": "lfcc"}},
    "dcnn_packets": {"model": "dcnn", "feature": {"kind": "packets"}},
    "dcnn_stft": {"model": "dcnn", "feature": {"kind": "stft"}},
    "dcnn_nodil_packets": {"model": "dcnn_nodil", "feature": {"kind": "packets"}},
}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=None, help="mini benchmark root")
    p.add_argument("--out", type=Path, default=REPO / "results" / "bench_detectors")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=10, help="epochs of the neural detectors")
    p.add_argument("--limit-train", type=int, default=None, help="frames per class")
    p.add_argument("--only", nargs="+", default=None, choices=list(DETECTORS))
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--resume", action="store_true", help="skip runs that have metrics.json")
    return p.parse_args()


def base_config(args: argparse.Namespace) -> dict:
    raw = yaml.safe_load((REPO / "configs" / "mini.yaml").read_text())
    if args.data is not None:
        raw["data_dir"] = str(args.data)
    raw.update(epochs=args.epochs, limit_train=args.limit_train, n_boot=args.n_boot)
    raw["progress"] = False
    return raw


def write_tables(out: Path, tables: dict[str, dict[int, pd.DataFrame]]) -> pd.DataFrame:
    rows = []
    for name, by_seed in tables.items():
        agg = report.aggregate_seeds(by_seed)
        rows.append(agg.assign(detector=name))
    full = pd.concat(rows, ignore_index=True)
    cols = [
        "detector",
        "generator",
        "n_frames",
        "n_seeds",
        "eer_mean",
        "eer_std",
        "accuracy_mean",
        "accuracy_std",
        "eer_ci_low",
        "eer_ci_high",
    ]
    full = full[cols]
    report.save_table(full, out / "generalization_long")
    wide = full.pivot_table(index="generator", columns="detector", values="eer_mean", sort=False)
    wide = wide.reset_index()
    report.save_table(wide, out / "generalization_eer")
    return wide


def speed(run_dir: Path, data: Path) -> dict:
    det = hub.resolve(run_dir / "best.pt")
    torch.set_num_threads(torch.get_num_threads())
    files = sorted((data / "A_ljspeech").glob("*.wav"))[:4]
    t0 = time.perf_counter()
    reports = detect.detect_files(det, files, progress=False)
    wall = time.perf_counter() - t0
    audio = sum(r.seconds for r in reports)
    return {
        "detect_audio_seconds": audio,
        "detect_wall_seconds": wall,
        "detect_audio_s_per_s": audio / wall,
        "forward_audio_s_per_s": evaluate.inference_speed(det, n_frames=64, batch_size=32),
        "n_parameters": count_parameters(det.model),
    }


def main() -> None:
    args = parse_args()
    raw = base_config(args)
    data = config.resolve_path(raw["data_dir"])
    args.out.mkdir(parents=True, exist_ok=True)
    tables: dict[str, dict[int, pd.DataFrame]] = {}
    timings = []
    names = args.only or list(DETECTORS)
    for seed in args.seeds:
        for name in names:
            cfg = config.TrainConfig.from_dict({**raw, **DETECTORS[name], "seeds": [seed]})
            run_dir = args.out / name / f"seed{seed}"
            if args.resume and (run_dir / "metrics.json").is_file():
                m = json.loads((run_dir / "metrics.json").read_text())
            else:
                t0 = time.perf_counter()
                m = train.train_one(cfg, run_dir, seed)
                m["wall_seconds"] = time.perf_counter() - t0
                (run_dir / "metrics.json").write_text(json.dumps(m, indent=1, default=float))
            tables.setdefault(name, {})[seed] = pd.DataFrame(m["test"])
            timings.append(
                {
                    "detector": name,
                    "seed": seed,
                    "epochs": len(m["history"]),
                    "train_seconds": m["train_seconds"],
                    "n_train_frames": m["n_train_frames"],
                    "n_parameters": m["n_parameters"],
                }
            )
            wide = write_tables(args.out, tables)
            pd.DataFrame(timings).to_csv(args.out / "timings.csv", index=False)
            print(
                f"[{time.strftime('%H:%M:%S')}] {name} seed {seed}: "
                f"{m['train_seconds']:.0f} s training",
                flush=True,
            )
    print(report.to_markdown(wide))
    print(pd.DataFrame(timings).to_markdown(index=False))
    if "dcnn_packets" in names:
        sp = speed(args.out / "dcnn_packets" / f"seed{args.seeds[0]}", data)
        (args.out / "speed.json").write_text(json.dumps(sp, indent=1))
        print(json.dumps(sp, indent=1))


if __name__ == "__main__":
    main()
