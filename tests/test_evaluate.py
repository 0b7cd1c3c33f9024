"""gpwave.evaluate: scoring waveforms, stores, splits and trees; detection reports."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from _detector_data import MeanDetector
from _signals import SR, make_tree
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn.metrics import roc_curve

from gpwave import ablation, evaluate, metrics, report


def sklearn_eer(y, s):
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    return brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)


def test_split_scores_score_only_the_split_and_feed_disagreements():

    from gpwave.models import Detector
    from gpwave.transforms import FeatureConfig

    rng = np.random.default_rng(0)
    waves = rng.normal(0, 0.1, (6, 4096)).astype(np.float32)

    class Store:
        index = pd.DataFrame(
            {
                "row": range(6),
                "label": [0, 1, 0, 1, 0, 1],
                "offset": 0,
                "generator": ["ljspeech", "melgan"] * 3,
                "file": "f.wav",
                "split": ["test"] * 4 + ["train"] * 2,
            }
        )

        def read(self, rows):
            return waves[np.asarray(rows)]

    torch.manual_seed(0)
    a, b = (Detector(FeatureConfig(level=4), "linear", 4096).eval() for _ in range(2))
    frames, scores_a = evaluate.split_scores(a, Store())
    _, scores_b = evaluate.split_scores(b, Store())
    assert list(frames["row"]) == [0, 1, 2, 3]  # the test split only
    with torch.no_grad():
        za, zb = (m(torch.from_numpy(waves[:4])) for m in (a, b))
    sa, sb = ((z[:, 1] - z[:, 0]).numpy() for z in (za, zb))  # log-odds from the logits
    np.testing.assert_allclose(scores_a, sa, rtol=1e-5)
    out = ablation.disagreements(scores_a, scores_b, frames)
    ref = ablation.disagreements(sa, sb, Store.index.iloc[:4])
    assert list(out["row"]) == list(ref["row"])


class _IndexStore:
    """A store whose index is all that split_frames reads."""

    def __init__(self, counts):
        gens = [g for g, n in counts.items() for _ in range(n)]
        self.index = pd.DataFrame(
            {
                "row": range(len(gens)),
                "generator": gens,
                "label": [int(g != "ljspeech") for g in gens],
                "split": "test",
            }
        )


def test_split_frames_caps_each_folder_and_filters_generators():
    store = _IndexStore({"ljspeech": 10, "melgan": 6, "hifigan": 3})
    counts = evaluate.split_frames(store, limit=4).groupby("generator").size().to_dict()
    assert counts == {"ljspeech": 4, "melgan": 4, "hifigan": 3}
    only = evaluate.split_frames(store, generators=["melgan"])
    assert set(only.generator) == {"ljspeech", "melgan"} and len(only) == 16
    a, b = (evaluate.split_frames(store, limit=4, seed=s)["row"].tolist() for s in (1, 1))
    assert a == b == sorted(a)
    assert evaluate.split_frames(store, "train").empty


def test_notebooks_evaluate_through_one_path():
    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    for name in ("03_train", "04_generalization", "05_dilation"):
        text = (notebooks / f"{name}.py").read_text()
        for private in ("table_from_scores", "select_frames", "score_frames(", "glob("):
            assert private not in text, f"{name} scores or loads tables by hand: {private}"
    for name in ("03_train", "04_generalization", "05_dilation"):
        assert "load_seed_tables" in (notebooks / f"{name}.py").read_text()


def test_scores_of_a_detector_sure_of_every_frame_keep_their_order():
    # logits (0, 40 + w.x): every frame's float32 fake probability is 1.0 (all tied, EER
    # 0.5), but the log-odds still rank fakes above reals; the EER must come from them
    from gpwave.models import Detector
    from gpwave.transforms import FeatureConfig

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 20)
    waves = (rng.normal(0, 1, (40, 4096)) * (0.05 + 0.05 * y[:, None])).astype(np.float32)
    det = Detector(FeatureConfig(level=4), "linear", 4096, level_norm=False).eval()
    with torch.no_grad():
        det.model.fc.bias.copy_(torch.tensor([0.0, 40.0]))
        z = det(torch.from_numpy(waves)).double().numpy()
    assert (det.fake_probability(torch.from_numpy(waves)).numpy() == 1.0).all()
    s = evaluate.score_waveforms(det, waves, batch_size=16)
    np.testing.assert_allclose(s, z[:, 1] - z[:, 0], rtol=1e-6)
    assert len(np.unique(s)) == 40
    assert metrics.eer(y, s) == pytest.approx(sklearn_eer(y, z[:, 1] - z[:, 0]), abs=1e-9)
    p = evaluate.score_waveforms(det, waves, kind="probability")
    assert metrics.eer(y, p) == pytest.approx(0.5)


def _speaker_tree(root: Path) -> Path:
    # speakers-tts-style names: one shared number per utterance across the folders
    utts = [f"s_{i}" for i in range(1, 5)]
    return make_tree(root, {"A_gt": utts, "B_hifigan": utts, "C_waveglow": utts[:3]}, seconds=2.0)


def _reference_rows(root: Path) -> pd.DataFrame:
    """Every 1 s frame of the tree with its mean sample, read with soundfile."""
    rows = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(folder.glob("*.wav")):
            x, _ = sf.read(f, dtype="float32")
            for k in range(len(x) // SR):
                rows.append({"folder": folder.name, "utt": f.stem.split("_")[1],
                             "label": int(folder.name != "A_gt"),
                             "score": float(x[k * SR : (k + 1) * SR].mean())})  # fmt: skip
    return pd.DataFrame(rows)


def test_tree_utterances_follow_the_pattern(tmp_path):
    root = _speaker_tree(tmp_path / "tree")
    frames = pd.DataFrame(
        {"folder": ["A_gt", "B_hifigan", "C_waveglow"],
         "file": ["/x/s_2.wav", str(root / "B_hifigan" / "s_2_gen.wav"), "s_3_gen.wav"]}
    )  # fmt: skip
    assert list(evaluate.tree_utterances(frames, root, r"s_(\d+)")) == ["2", "2", "3"]


def test_score_tree_matches_sklearn_per_folder(tmp_path):
    root = _speaker_tree(tmp_path / "tree")
    dets = {"up": MeanDetector(1.0), "down": MeanDetector(-1.0)}
    t = evaluate.score_tree(dets, root, r"s_(\d+)", n_boot=30, store_dir=tmp_path / "store")
    assert list(t.columns) == [*report.TABLE_COLUMNS, "detector"]
    assert list(t["detector"]) == ["up"] * 3 + ["down"] * 3
    ref = _reference_rows(root)
    real = ref[ref["label"] == 0]
    for folder in ("B_hifigan", "C_waveglow"):
        both = pd.concat([real, ref[ref["folder"] == folder]])
        for name, sign in (("up", 1), ("down", -1)):
            row = t[(t["detector"] == name) & (t["generator"] == folder.split("_")[1])].iloc[0]
            assert row["n_frames"] == len(both)
            assert row["eer"] == pytest.approx(_sk_eer(both["label"], sign * both["score"]))
            assert row["eer_ci_low"] <= row["eer"] <= row["eer_ci_high"]
    pooled = t[(t["generator"] == report.POOLED) & (t["detector"] == "up")].iloc[0]
    assert pooled["eer"] == pytest.approx(_sk_eer(ref["label"], ref["score"]))


def test_score_tree_bootstraps_utterances_across_folders(tmp_path):
    # a real file and its fake counterparts (same number) are one utterance, drawn together
    root = _speaker_tree(tmp_path / "tree")
    t = evaluate.score_tree({"up": MeanDetector()}, root, r"s_(\d+)", n_boot=40,
                            store_dir=tmp_path / "store", seed=2)  # fmt: skip
    ref = _reference_rows(root)
    both = ref[ref["folder"].isin(["A_gt", "B_hifigan"])]
    low, high = metrics.eer_ci(both["label"], both["score"], both["utt"], 40, seed=2)
    row = t.set_index("generator").loc["hifigan"]
    assert (row["eer_ci_low"], row["eer_ci_high"]) == pytest.approx((low, high))
    limited = evaluate.score_tree({"up": MeanDetector()}, root, r"s_(\d+)", n_boot=0,
                                  store_dir=tmp_path / "store", limit=2, by="folder")  # fmt: skip
    assert list(limited["n_frames"]) == [4, 4, 6]  # 2 frames per folder
    assert list(limited["generator"]) == ["B_hifigan", "C_waveglow", report.POOLED]


def test_score_trees_label_folders_by_tree(tmp_path):
    roots = {"one": _speaker_tree(tmp_path / "one"), "two": _speaker_tree(tmp_path / "two")}
    t = evaluate.score_trees({"up": MeanDetector()}, roots, r"s_(\d+)", n_boot=0,
                             store_dir=tmp_path / "store")  # fmt: skip
    assert list(t.columns) == [*report.TABLE_COLUMNS, "tree", "detector", "folder"]
    assert list(t["folder"]) == [f"{tree}/{g}" for tree in roots
                                 for g in ("hifigan", "waveglow", "pooled")]  # fmt: skip
    one, two = (t[t["tree"] == k]["eer"].to_numpy() for k in roots)
    np.testing.assert_allclose(one, two)  # the same audio in both trees


def _sk_eer(y, s):
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    return brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)


def test_inference_speed_is_measured_on_the_detectors_own_device(monkeypatch):
    """A CPU detector on a machine with CUDA is timed on the CPU (its label says cpu)."""
    from gpwave.models import Detector
    from gpwave.transforms import FeatureConfig

    det = Detector(FeatureConfig(), "linear", 4096).eval()
    seen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # auto would pick CUDA
    monkeypatch.setattr(
        evaluate, "score_waveforms", lambda d, x, b, device=None, **k: seen.append(device)
    )
    assert evaluate.inference_speed(det, n_frames=2, batch_size=2) > 0
    assert seen and all(torch.device(d).type == "cpu" for d in seen)


# --- scoring on several processes, with reader workers, in mixed precision --------------
def _dcnn_run_config(tmp_path: Path) -> Path:
    import yaml
    from _detector_data import base_config, make_detector_tree

    root = make_detector_tree(tmp_path / "data")
    raw = base_config(root, tmp_path / "store", model="dcnn", n_boot=40, limit_test=60)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(raw))
    return tmp_path / "cfg.yaml"


@pytest.mark.slow
def test_test_table_of_two_gloo_processes_is_the_one_process_table(tmp_path):
    """torchrun, 2 CPU processes: each scores its batches, the lead's table is one process's.

    Rank 1 starts from other weights (the lead's are broadcast) and scores in batches of
    8, so both ranks score several batches and the gathered order matters.
    """
    import os
    import subprocess
    import sys

    from gpwave import config, frames
    from gpwave.models import Detector
    from gpwave.store import prepare_store

    cfg_path = _dcnn_run_config(tmp_path)
    cfg = config.TrainConfig.from_dict(config.load_yaml(cfg_path))
    store = prepare_store(frames.data_config(cfg), store_dir=cfg.store_dir, progress=False)
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(repo)}
    script = str(repo / "tests" / "_dist_score_check.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           "2", script, str(cfg_path), str(tmp_path)]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]

    torch.manual_seed(0)
    det = Detector(cfg.feature_config, cfg.model, cfg.n_samples).eval()
    torch.set_num_threads(1)  # as the ranks (OMP_NUM_THREADS=1)
    one = evaluate.score_split(det, store, "test", cfg.test_generators, [cfg.train_generator],
                               cfg.n_boot, 0, batch_size=8, limit=cfg.limit_test)  # fmt: skip
    frames_, scores = evaluate.split_scores(det, store, "test", cfg.test_generators, 0,
                                            batch_size=8, limit=cfg.limit_test)  # fmt: skip
    assert len(scores) > 4 * 8  # several batches per rank
    for rank in (0, 1):  # every rank gathers every score, in row order
        np.testing.assert_array_equal(np.load(tmp_path / f"scores{rank}.npy"), scores)
    with torch.no_grad():  # independent of the batching: one forward pass
        z = det(torch.from_numpy(store.read(frames_["row"].to_numpy())))
    np.testing.assert_allclose(scores, (z[:, 1] - z[:, 0]).numpy(), rtol=1e-4, atol=1e-4)
    two = pd.read_csv(tmp_path / "table.csv")
    pd.testing.assert_frame_equal(two, one, check_exact=True, check_dtype=False)


def test_rank_batches_cover_every_frame_once_in_single_process_batches():
    for n, batch, world in [(0, 4, 2), (7, 2, 2), (50, 8, 3), (9, 64, 4)]:
        shares = [evaluate.rank_batches(n, batch, dist_place(r, world)) for r in range(world)]
        ordered = [shares[k % world][k // world] for k in range(sum(map(len, shares)))]
        ref = [np.arange(i, min(i + batch, n)) for i in range(0, n, batch)]
        assert [b.tolist() for b in ordered] == [b.tolist() for b in ref]


def dist_place(rank, world):
    from gpwave import dist

    return dist.Dist(rank=rank, world=world)


def test_store_scoring_with_reader_workers_equals_a_direct_forward(tmp_path):
    """The loader path (int16 read ahead in 2 processes) gives the frames store.read gives."""
    from gpwave import config, frames
    from gpwave.models import Detector
    from gpwave.store import prepare_store

    cfg = config.TrainConfig.from_dict(config.load_yaml(_dcnn_run_config(tmp_path)))
    store = prepare_store(frames.data_config(cfg), store_dir=cfg.store_dir, progress=False)
    torch.manual_seed(0)
    det = Detector(cfg.feature_config, "linear", cfg.n_samples).eval()
    rows = np.arange(len(store))[::3]
    with torch.no_grad():
        ref = [det.fake_log_odds(torch.from_numpy(store.read(rows[i : i + 64])))
               for i in range(0, len(rows), 64)]  # fmt: skip
    ref = torch.cat(ref).double().numpy()
    plain = evaluate.score_frames(det, store, rows)
    read_ahead = evaluate.score_frames(det, store, rows, workers=2)
    np.testing.assert_array_equal(plain, ref)  # 64-frame batches on the CPU, as before
    np.testing.assert_array_equal(read_ahead, ref)


def test_scoring_precision_is_float32_on_the_cpu_and_float16_with_amp_on_cuda():
    assert evaluate.autocast_dtype("cpu", amp=True) is None
    assert evaluate.autocast_dtype("cuda", amp=False) is None
    assert evaluate.autocast_dtype(torch.device("cuda", 1), amp=True) is torch.float16
    assert evaluate.scoring_batch_size("cpu") == 64  # the numbers of every earlier table
    assert evaluate.scoring_batch_size("cuda:0") > 64


def test_amp_scoring_keeps_the_head_in_float32_so_sure_frames_do_not_tie(monkeypatch):
    """Half-precision logits tie the frames a detector is sure of; the float32 head does not.

    CUDA's float16 cannot run here, so the CPU's bfloat16 autocast (8 significant bits,
    coarser still) stands in for it through the same code path.
    """
    from gpwave.models import Detector
    from gpwave.transforms import FeatureConfig

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 20)
    waves = (rng.normal(0, 1, (40, 5512)) * (0.05 + 0.05 * y[:, None])).astype(np.float32)
    torch.manual_seed(0)
    det = Detector(FeatureConfig(), "dcnn", 5512).eval()
    with torch.no_grad():  # sure of every frame, and spread out (an untrained DCNN is not)
        det.model.fc.weight.mul_(20.0)
        det.model.fc.bias.copy_(torch.tensor([0.0, 40.0]))
    fp32 = evaluate.score_waveforms(det, waves)
    assert np.array_equal(evaluate.score_waveforms(det, waves, amp=True), fp32)  # CPU: no amp
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        z = det(torch.from_numpy(waves)).float()
    naive = (z[:, 1] - z[:, 0]).numpy()  # the whole model in half precision
    assert len(np.unique(fp32)) == len(waves)
    assert len(np.unique(naive)) < 10  # steps of 1/4 near 40: the frames tie
    monkeypatch.setattr(evaluate, "autocast_dtype", lambda device, amp: torch.bfloat16)
    half = evaluate.score_waveforms(det, waves, amp=True)
    assert len(np.unique(half)) == len(waves)  # no ties: the head ran in float32
    np.testing.assert_allclose(half, fp32, rtol=1e-3)  # the trunk's rounding only
    assert abs(metrics.eer(y, half) - metrics.eer(y, fp32)) <= 1 / 20 + 1e-9  # one frame
    assert "forward" not in vars(det.model.fc)  # the head is restored afterwards
