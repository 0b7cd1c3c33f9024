"""GPU smoke check: every CUDA branch of gpwave on the mini benchmark, asserted, in minutes.

``make gpu-check`` runs it; run it first on a new GPU node. It checks, on one GPU:

1. the packet transform on CUDA equals the CPU one (float32, sym5, level 8);
2. the DCNN in channels-last equals the contiguous one (eval mode);
3. mixed-precision training steps (autocast float16 + GradScaler) give finite losses that
   fall, and their frames/s beside float32's;
4. ``torchrun --nproc-per-node 1`` + NCCL + SyncBatchNorm: ``gpwave train`` on the mini
   protocol for a few steps, with AMP, finishing with a checkpoint and a test table;
5. ``gpwave evaluate`` and ``gpwave detect`` on CUDA, whose scores match the CPU's;
6. test scoring as training does it on CUDA (reader workers, 256-frame batches, float16
   trunk with a float32 head) against the CPU's float32 scores: close, no new ties, the
   same EER within one frame; and the EER bootstrap in torch on CUDA = numpy's.

Without CUDA it says so and exits 0 (nothing to check). Each failure is an assertion
with the numbers. Needs the mini benchmark and the released models (``make data``).

Usage: python benchmarks/gpu_check.py [--data $GPWAVE_DATA/wavefake-mini] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def _frames(data: Path, n: int) -> np.ndarray:
    """``n`` one-second frames of real and fake mini-benchmark audio at 22,050 Hz."""
    from gpwave.data import frame_audio, load_audio

    files = (
        sorted((data / "A_ljspeech").glob("*.wav"))[:4]
        + sorted((data / "B_melgan").glob("*.wav"))[:4]
    )
    frames = np.concatenate([frame_audio(load_audio(f, 22050), 22050) for f in files])
    assert len(frames) >= n, f"only {len(frames)} frames in {data}"
    return frames[:n].astype(np.float32)


def check_packets(x: np.ndarray) -> dict:
    from gpwave.transforms import wavelet_packets

    cpu = wavelet_packets(torch.from_numpy(x), "sym5", 8)
    gpu = wavelet_packets(torch.from_numpy(x).cuda(), "sym5", 8).cpu()
    err = float((cpu - gpu).abs().max() / cpu.abs().max())
    assert err < 1e-5, f"packets on CUDA differ from the CPU's by {err:.2e} (relative)"
    return {"packets_rel_err": err}


def check_channels_last(x: np.ndarray) -> dict:
    from gpwave.models import Detector
    from gpwave.transforms import FeatureConfig

    torch.manual_seed(0)
    det = Detector(FeatureConfig(), "dcnn", x.shape[1]).cuda().eval()
    xb = torch.from_numpy(x[:16]).cuda()
    with torch.no_grad():
        last = det(xb)
        det.model.memory_format = torch.contiguous_format
        det.model.to(memory_format=torch.contiguous_format)
        plain = det(xb)
    err = float((last - plain).abs().max())
    assert err < 1e-3, f"channels-last logits differ from contiguous ones by {err:.2e}"
    return {"channels_last_max_logit_diff": err}


def _steps(x: np.ndarray, amp: bool, n_steps: int = 20, batch: int = 32) -> tuple[list, float]:
    from gpwave.models import Detector
    from gpwave.transforms import FeatureConfig

    torch.manual_seed(0)
    det = Detector(FeatureConfig(), "dcnn", x.shape[1]).cuda().train()
    opt = torch.optim.Adam(det.parameters(), lr=4e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    xs = torch.from_numpy(x).cuda()
    y = torch.tensor([0] * (len(x) // 2) + [1] * (len(x) - len(x) // 2), device="cuda")
    losses = []
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n_steps):
        idx = torch.randint(0, len(x), (batch,), device="cuda")
        with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
            loss = torch.nn.functional.cross_entropy(det(xs[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        losses.append(loss.detach())
    torch.cuda.synchronize()
    fps = n_steps * batch / (time.perf_counter() - t0)
    return [float(v) for v in losses], fps


def check_amp(x: np.ndarray) -> dict:
    _steps(x, amp=True, n_steps=3)  # warm-up (cuDNN autotuning)
    amp_losses, amp_fps = _steps(x, amp=True)
    _, fp32_fps = _steps(x, amp=False)
    assert all(np.isfinite(amp_losses)), f"AMP losses not finite: {amp_losses}"
    first, last = np.mean(amp_losses[:5]), np.mean(amp_losses[-5:])
    assert last < first, f"AMP loss did not fall in 20 steps: {first:.3f} -> {last:.3f}"
    return {"amp_frames_per_s": amp_fps, "fp32_frames_per_s": fp32_fps,
            "amp_loss_first_last": [float(first), float(last)]}  # fmt: skip


def _gpwave(*args: str, env: dict | None = None, torchrun: bool = False) -> str:
    cmd = [sys.executable, "-m", "gpwave", *args]
    if torchrun:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "1", "-m", "gpwave", *args]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert proc.returncode == 0, f"{' '.join(args[:2])} failed:\n{proc.stderr[-3000:]}"
    return proc.stdout


def check_torchrun_train(data: Path, out: Path) -> dict:
    env = {**os.environ, "TORCH_NCCL_ASYNC_ERROR_HANDLING": "1"}
    sets = ["device=cuda", "amp=true", "max_steps=12", "limit_train=64", "limit_val=32",
            "limit_test=16", "n_boot=20", "seeds=[0]", "progress=false",
            f"data_dir={data}"]  # fmt: skip
    t0 = time.perf_counter()
    _gpwave("train", "configs/mini.yaml", "--out", str(out), "--overwrite",
            *[a for s in sets for a in ("--set", s)], env=env, torchrun=True)  # fmt: skip
    metrics = json.loads(next(out.rglob("metrics.json")).read_text())
    assert metrics["device"].startswith("cuda"), metrics["device"]
    assert next(out.rglob("test_table.csv")).is_file()
    return {"torchrun_nccl_train_seconds": time.perf_counter() - t0,
            "torchrun_best_val_eer": metrics["best"]["val_eer"]}  # fmt: skip


def check_detect_evaluate(data: Path) -> dict:
    files = [str(sorted((data / d).glob("*.wav"))[0]) for d in ("A_ljspeech", "B_melgan")]
    detect = ("detect", "--model", "paper-sym5", "--json", "--device")
    cpu = json.loads(_gpwave(*detect, "cpu", *files))
    gpu = json.loads(_gpwave(*detect, "cuda", *files))
    diffs = [abs(a - b) for rc, rg in zip(cpu, gpu, strict=True)
             for a, b in zip(rc["scores"], rg["scores"], strict=True) if a is not None]  # fmt: skip
    assert diffs and max(diffs) < 1e-3, f"detect on CUDA differs from the CPU by {max(diffs):.2e}"
    table = json.loads(_gpwave("evaluate", "--model", "paper-sym5", "--device", "cuda",
                               "--n-boot", "20", "--json", str(data)))  # fmt: skip
    assert table and all(0 <= r["eer"] <= 1 for r in table)
    return {"detect_max_prob_diff_cpu_cuda": max(diffs), "evaluate_rows": len(table)}


def check_scoring(data: Path, device: str = "cuda", limit: int = 300) -> dict:
    """Mixed-precision store scoring on ``device`` vs float32 on the CPU (paper-sym5).

    ``limit`` test frames per folder of real, MelGAN and HiFi-GAN; ``device="cpu"``
    runs the same comparisons on the CPU (where amp is off), as the tests do.
    """
    from gpwave import evaluate, hub, metrics
    from gpwave.frames import protocol_store

    store = protocol_store(REPO / "configs" / "mini.yaml", data)
    frames = evaluate.split_frames(store, "test", ["melgan", "hifigan"], limit=limit)
    rows, y = frames["row"].to_numpy(), frames["label"].to_numpy()
    cpu_det, det = hub.resolve("paper-sym5", "cpu"), hub.resolve("paper-sym5", device)
    t0 = time.perf_counter()
    ref = evaluate.score_frames(cpu_det, store, rows)  # float32, 64-frame batches
    t1 = time.perf_counter()
    amp = evaluate.score_frames(det, store, rows, workers=2, amp=True)
    t2 = time.perf_counter()
    fp32 = evaluate.score_frames(det, store, rows, workers=2)
    err32 = float(np.abs(fp32 - ref).max())
    assert err32 < 1e-3 * max(1.0, float(np.abs(ref).max())), f"fp32 off by {err32:.2e}"
    err = np.abs(amp - ref) / (1.0 + np.abs(ref))
    assert float(np.median(err)) < 0.01 and float(err.max()) < 0.1, f"amp off: {err.max():.3f}"
    ties_ref, ties_amp = len(ref) - len(np.unique(ref)), len(amp) - len(np.unique(amp))
    assert ties_amp <= ties_ref + len(ref) // 100, f"amp tied {ties_amp} frames ({ties_ref})"
    frame = 1.0 / min(int(y.sum()), int(len(y) - y.sum()))
    e_ref, e_amp = metrics.eer(y, ref), metrics.eer(y, amp)
    assert abs(e_amp - e_ref) <= frame + 1e-9, f"amp EER {e_amp:.4f} vs CPU {e_ref:.4f}"
    groups = frames["utterance"].to_numpy(str)
    t3 = time.perf_counter()
    boot = metrics.bootstrap_eers(y, [ref], groups, 1000, 0)
    t4 = time.perf_counter()
    boot_dev = metrics.bootstrap_eers(y, [ref], groups, 1000, 0, device=device)
    t5 = time.perf_counter()
    assert boot.shape == boot_dev.shape and np.allclose(boot, boot_dev, rtol=0, atol=1e-12)
    return {"score_cpu_fp32_frames_per_s": len(rows) / (t1 - t0),
            "score_amp_frames_per_s": len(rows) / (t2 - t1),
            "score_amp_max_rel_err": float(err.max()), "score_amp_ties": ties_amp,
            "eer_cpu_amp": [e_ref, e_amp],
            "bootstrap_1000_numpy_s": t4 - t3, "bootstrap_1000_device_s": t5 - t4}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(os.environ.get("GPWAVE_DATA", REPO / "data")) / "wavefake-mini"
    ap.add_argument("--data", type=Path, default=default)
    ap.add_argument("--out", type=Path, default=None, help="where the check's run goes")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("gpu-check: skipped, no CUDA device here (nothing to check)")
        return 0
    print(f"gpu-check on {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    x = _frames(args.data, 64)
    results: dict = {}
    out = args.out or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    for name, check in [
        ("packet transform CUDA = CPU", lambda: check_packets(x)),
        ("channels-last DCNN", lambda: check_channels_last(x)),
        ("AMP training steps", lambda: check_amp(x)),
        ("torchrun + NCCL + SyncBatchNorm", lambda: check_torchrun_train(args.data, out)),
        ("evaluate and detect on CUDA", lambda: check_detect_evaluate(args.data)),
        ("test scoring in mixed precision, bootstrap on CUDA", lambda: check_scoring(args.data)),
    ]:
        t0 = time.perf_counter()
        results.update(check())
        print(f"ok  {name} ({time.perf_counter() - t0:.1f} s)")
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
