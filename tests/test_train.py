import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from _detector_data import base_config, make_detector_tree

from gpwave import config, evaluate, frames, report, runs, train
from gpwave.config import load_yaml
from gpwave.data import DataConfig
from gpwave.errors import ConfigError, DataError
from gpwave.models import Detector
from gpwave.store import prepare_store, select_frames


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = make_detector_tree(tmp_path_factory.mktemp("det") / "data")
    return root, root.parent / "store"


def cfg_of(tree, **kw):
    return config.TrainConfig.from_dict(base_config(*tree, **kw))


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("epochs", "ten", "integer >= 1"),
        ("epochs", "0", "integer >= 1"),
        ("lr", "fast", "a number >= 0"),
        ("lr", "-1", "a number >= 0"),
        ("seeds", "0", "list of integers"),
        ("batch_size", "0", "integer >= 2"),
        ("split", "[0.5, 0.5]", "sum to 1"),
        ("device", "gpu", "cuda:N"),
        ("model", "resnet", "dcnn"),
        ("feature.kind", "wavelets", "packets"),
        ("model_kwargs.nonsense", "1", "unexpected keyword argument 'nonsense'"),
    ],
)
def test_config_mistakes_are_one_line_errors_before_any_data_work(
    tree, tmp_path, key, value, allowed
):
    raw = base_config(tree[0], tmp_path / "store")
    with pytest.raises(ConfigError) as err:
        train.run_config(raw, tmp_path / "out", overrides={key: value})
    msg = str(err.value)
    assert "\n" not in msg and key.split(".")[-1] in msg and value.strip("[]") in msg
    assert allowed in msg
    assert not (tmp_path / "out").exists() and not (tmp_path / "store").exists()


def test_shipped_configs_are_valid():
    for name in ("mini.yaml", "wavefake.yaml"):
        for point in config.expand_grid(yaml.safe_load((REPO / "configs" / name).read_text())):
            point.pop("_grid")
            config.TrainConfig.from_dict(point)


def test_train_writes_checkpoints_metrics_and_learns(tree, tmp_path):
    cfg = cfg_of(tree, epochs=8, cache_features=True)
    m = train.train_one(cfg, tmp_path, seed=0)
    for f in (
        "last.pt",
        "best.pt",
        "config.yaml",
        "metrics.json",
        "test_table.csv",
        "test_table.json",
        "test_table.md",
        "test_table.tex",
        "test_table.html",
    ):
        assert (tmp_path / f).is_file(), f
    ck = torch.load(tmp_path / "last.pt", weights_only=True)
    assert {
        "detector",
        "model",
        "optimizer",
        "scaler",
        "epoch",
        "best",
        "history",
        "config",
        "seed",
        "rng",
    } <= set(ck)
    assert ck["epoch"] == 8 and len(ck["history"]) == 8
    conf = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert conf["git_commit"] and len(conf["data_manifest_hash"]) == 64
    assert json.loads((tmp_path / "metrics.json").read_text())["best"] == m["best"]
    table = {r["generator"]: r for r in m["test"]}
    assert set(table) == {"melgan", "hifigan", report.POOLED}
    assert table["melgan"]["eer"] < 0.15
    assert m["converged"] and m["stopped"] == "epochs" and m["steps"] > 8


def test_best_checkpoint_carries_its_epochs_validation_calibration(tree, tmp_path):
    from scipy.special import expit
    from sklearn.linear_model import LogisticRegression

    from gpwave import dist

    cfg = cfg_of(tree, epochs=3, eval_test=False)
    m = train.train_one(cfg, tmp_path, seed=0)
    det = Detector.load(tmp_path / "best.pt")
    assert det.calibration == tuple(m["best"]["calibration"])
    store = frames.open_store(cfg, dist.Dist(), progress=False)
    rows = frames.select_rows(cfg, store, "val", cfg.limit_val)
    s = evaluate.score_frames(det, store, rows).astype(np.float64)
    y = store.index["label"].to_numpy()[rows]
    x = (s - s.mean()) / s.std()  # the reference: scikit-learn on the best model's scores
    ref = LogisticRegression(class_weight="balanced", tol=1e-12, max_iter=10_000).fit(x[:, None], y)
    a = ref.coef_[0, 0] / s.std()
    np.testing.assert_allclose(det.calibration, (a, ref.intercept_[0] - a * s.mean()), rtol=1e-3)
    p = expit(det.calibration[0] * s + det.calibration[1])  # the verdicts' probability
    assert p[y == 1].mean() > 0.5 > p[y == 0].mean()


def test_resume_of_a_checkpoint_without_calibration_fits_one(tree, tmp_path):
    train.train_one(cfg_of(tree, epochs=1, eval_test=False), tmp_path, seed=0)
    for name in ("last.pt", "best.pt"):  # as written before verdicts were calibrated
        ck = torch.load(tmp_path / name, weights_only=True)
        del ck["detector"]["calibration"], ck["best"]["calibration"]
        torch.save(ck, tmp_path / name)
    train.train_one(cfg_of(tree, epochs=3, eval_test=False), tmp_path, seed=0, resume=True)
    assert Detector.load(tmp_path / "best.pt").calibration is not None


def test_normalizer_is_fitted_on_training_frames(tree, tmp_path):
    cfg = cfg_of(tree, epochs=1, eval_test=False)
    train.train_one(cfg, tmp_path, seed=0)
    det = Detector.load(tmp_path / "best.pt")
    store = prepare_store(
        DataConfig(
            root=tree[0], seconds=0.25, split=(0.5, 0.25, 0.25), only_test_folders=("C_hifigan",)
        ),
        tree[1],
        progress=False,
    )
    rows = select_frames(store, "train", ["melgan"])
    feats = det.raw_features(torch.from_numpy(store.read(rows))).double().numpy()
    np.testing.assert_allclose(det.normalizer.mean.numpy(), feats.mean(axis=(0, 3)), atol=1e-6)
    np.testing.assert_allclose(det.normalizer.std.numpy(), feats.std(axis=(0, 3)), rtol=1e-5)


def _state(path):
    ck = torch.load(path, weights_only=True)
    return (
        ck["model"],
        ck["optimizer"]["state"],
        [{k: v for k, v in h.items() if k != "seconds"} for h in ck["history"]],
    )


class Stop(Exception):
    pass


def _interrupt_after(k):
    def cb(epoch, metrics):
        if epoch == k:
            raise Stop

    return cb


def _assert_same_run(a, b):
    (ma, oa, ha), (mb, ob, hb) = _state(a), _state(b)
    assert ha == hb
    assert all(torch.equal(ma[k], mb[k]) for k in ma)
    assert all(torch.equal(oa[i][k], ob[i][k]) for i in oa for k in oa[i] if k != "step")


@pytest.mark.parametrize("model", ["linear", pytest.param("dcnn", marks=pytest.mark.slow)])
def test_resume_after_interruption_ends_with_the_same_weights(tree, tmp_path, model):
    cfg = cfg_of(tree, model=model, epochs=3, eval_test=False, lr=0.001)
    train.train_one(cfg, tmp_path / "full", seed=1)
    with pytest.raises(Stop):
        train.train_one(cfg, tmp_path / "cut", seed=1, callback=_interrupt_after(1))
    assert torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["epoch"] == 1
    train.train_one(cfg, tmp_path / "cut", seed=1, resume=True)
    _assert_same_run(tmp_path / "full" / "last.pt", tmp_path / "cut" / "last.pt")


def test_same_seed_same_numbers_other_seed_differs(tree, tmp_path):
    cfg = cfg_of(tree, epochs=2, eval_test=False)
    train.train_one(cfg, tmp_path / "a", seed=3)
    train.train_one(cfg, tmp_path / "b", seed=3)
    train.train_one(cfg, tmp_path / "c", seed=4)
    _assert_same_run(tmp_path / "a" / "last.pt", tmp_path / "b" / "last.pt")
    wa, wc = _state(tmp_path / "a" / "last.pt")[0], _state(tmp_path / "c" / "last.pt")[0]
    assert not torch.equal(wa["model.fc.weight"], wc["model.fc.weight"])


def test_resume_refuses_a_different_detector(tree, tmp_path):
    train.train_one(cfg_of(tree, epochs=1, eval_test=False), tmp_path, seed=0)
    other = cfg_of(tree, epochs=2, eval_test=False, feature={"kind": "stft"})
    with pytest.raises(ConfigError, match="last.pt.*feature"):
        train.train_one(other, tmp_path, seed=0, resume=True)


def test_gmm_is_fitted_not_trained(tree, tmp_path):
    cfg = cfg_of(
        tree,
        model="gmm",
        feature={"kind": "lfcc"},
        model_kwargs={"n_components": 4, "max_iter": 20},
        limit_test=3,
    )
    m = train.train_one(cfg, tmp_path, seed=0)
    assert len(m["history"]) == 1
    assert all(r["n_frames"] <= 6 for r in m["test"])  # 3 real + 3 fake per generator
    assert {r["generator"] for r in m["test"]} >= {"melgan", "hifigan"}
    det = Detector.load(tmp_path / "best.pt")
    assert det.model.means.abs().sum() > 0


def test_run_config_grid_over_features_and_seeds(tree, tmp_path):
    raw = base_config(*tree, feature={"kind": ["lfcc", "mfcc"]}, seeds=[0, 1], eval_test=False)
    results = train.run_config(raw, tmp_path, overrides={"epochs": "1"})
    assert len(results) == 4
    for kind in ("lfcc", "mfcc"):
        for seed in (0, 1):
            run = tmp_path / f"kind-{kind}" / f"seed{seed}"
            assert (run / "best.pt").is_file()
            conf = yaml.safe_load((run / "config.yaml").read_text())
            assert (
                conf["feature"] == {"kind": kind} and conf["seed"] == seed and conf["epochs"] == 1
            )


def _torchrun(args, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    proc = subprocess.run(
        cmd + args, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "fmt"),
    [("dcnn_nodrop", "channels_last"), ("dcnn_nodrop", "contiguous"), ("lcnn", "contiguous")],
)
def test_ddp_gradients_of_two_cpu_processes_match_one(tmp_path, model, fmt):
    """gloo, 2 processes, synchronised BatchNorm: the global batch's gradient.

    Both sides run in the same memory format (channels-last is the DCNN's default) and in
    float64: a float32 comparison measures the rounding of two reduction orders (3 % on
    one ill-conditioned weight gradient), float64 leaves only DDP, so the bound is 1e-9
    (it was 0.02 in float32).
    """
    script = str(REPO / "tests" / "_ddp_grad_check.py")
    _torchrun([script, model, str(tmp_path / "e.json"), fmt], tmp_path)
    err = json.loads((tmp_path / "e.json").read_text())
    assert max(err.values()) < 1e-9, sorted(err.items(), key=lambda kv: kv[1])[-3:]


@pytest.mark.slow
def test_ddp_training_run_of_two_cpu_processes_agrees_with_one(tree, tmp_path):
    """torchrun + `gpwave train`, 2 CPU processes with gloo vs 1 process: same losses."""
    raw = base_config(
        *tree, model="dcnn_nodrop", epochs=1, lr=0.001, eval_test=False, batch_size=16, threads=1
    )
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(raw))
    _torchrun(["-m", "gpwave", "train", "cfg.yaml", "--out", "ddp"], tmp_path)
    train.run_config(tmp_path / "cfg.yaml", tmp_path / "one")
    one = torch.load(tmp_path / "one" / "seed0" / "last.pt", weights_only=True)
    two = torch.load(tmp_path / "ddp" / "seed0" / "last.pt", weights_only=True)
    # Adam's first steps move every weight by about +-lr whatever its gradient's size, so
    # float-level gradient differences flip some near-zero updates: compare the losses
    # (and the gradients themselves in the test above), not the weights bit for bit.
    for h1, h2 in zip(one["history"], two["history"], strict=True):
        assert h2["train_loss"] == pytest.approx(h1["train_loss"], abs=0.01)
        assert h2["val_loss"] == pytest.approx(h1["val_loss"], abs=0.01)
    assert two["model"].keys() == one["model"].keys()


@pytest.mark.slow
def test_ranks_that_see_different_validation_numbers_stop_together(tree, tmp_path):
    """Early stopping is decided once (from the lead's validation), so no rank waits forever.

    Rank 0's validation improves each epoch, rank 1's worsens (``_ddp_stop_check.py``);
    deciding per rank, rank 1 stopped after two epochs and rank 0 hung in its next
    gradient all-reduce until the process-group timeout.
    """
    raw = base_config(*tree, model="linear", epochs=4, patience=1, eval_test=False, threads=1)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(raw))
    script = str(REPO / "tests" / "_ddp_stop_check.py")
    os.environ["GPWAVE_DIST_TIMEOUT"] = "60"
    try:
        _torchrun([script, "cfg.yaml", str(tmp_path / "out")], tmp_path)
    finally:
        del os.environ["GPWAVE_DIST_TIMEOUT"]
    ranks = [json.loads((tmp_path / "out" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1] == [1, 2, 3, 4]


@pytest.mark.slow
def test_gain_invariance_on_the_mini_benchmark(mini_root, tmp_path):
    """Scaling test audio by +-6 dB changes no generator's EER by more than 1 point."""
    raw = yaml.safe_load((REPO / "configs" / "mini.yaml").read_text())
    raw.update(
        data_dir=str(mini_root),
        store_dir=str(tmp_path / "store"),
        model="linear",
        lr=0.01,
        epochs=30,
        limit_train=96,
        progress=False,
        eval_test=False,
    )
    train.train_one(config.TrainConfig.from_dict(raw), tmp_path / "run", seed=0)
    det = Detector.load(tmp_path / "run" / "best.pt")
    store = prepare_store(
        DataConfig(root=mini_root, only_test_folders=raw["only_test_folders"]),
        tmp_path / "store",
        progress=False,
    )
    tables = {
        db: evaluate.score_split(det, store, "test", n_boot=0, gain=10 ** (db / 20)).set_index(
            "generator"
        )
        for db in (-6, 0, 6)
    }
    for db in (-6, 6):
        change = (tables[db]["eer"] - tables[0]["eer"]).abs()
        assert change.max() <= 0.01, change.sort_values().tail()


def test_a_second_run_into_the_same_folder_fails_at_once(tree, tmp_path):
    cfg = cfg_of(tree, epochs=2, eval_test=False)
    seen = []

    def second_run(epoch, metrics):
        if epoch == 1:
            with pytest.raises(
                ConfigError, match=f"in use by another gpwave run.*pid {os.getpid()}"
            ):
                train.train_one(cfg, tmp_path, seed=1)
            with pytest.raises(ConfigError, match="in use"):
                train.run_config(base_config(*tree, epochs=1), tmp_path.parent / tmp_path.name)
            seen.append(epoch)

    train.train_one(cfg, tmp_path, seed=0, callback=second_run)
    assert seen == [1]
    assert torch.load(tmp_path / "last.pt", weights_only=True)["seed"] == 0
    assert not list(tmp_path.glob("*.tmp")) and not (tmp_path / runs.OWNER_NAME).exists()
    train.train_one(cfg, tmp_path, seed=0, resume=True)  # the lock went with its run


def test_resume_refuses_a_changed_setting_that_is_not_resumable(tree, tmp_path):
    train.train_one(cfg_of(tree, epochs=1, eval_test=False), tmp_path, seed=0)
    for change in ({"batch_size": 8}, {"limit_train": 4}, {"model_kwargs": {"bias": False}}):
        key = next(iter(change))
        with pytest.raises(ConfigError, match=f"--resume cannot change {key}"):
            train.train_one(
                cfg_of(tree, epochs=2, eval_test=False, **change), tmp_path, resume=True
            )
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 1


def test_resume_applies_and_records_a_changed_learning_rate(tree, tmp_path):
    train.train_one(cfg_of(tree, epochs=1, eval_test=False, lr=0.01), tmp_path, seed=0)
    m = train.train_one(cfg_of(tree, epochs=2, eval_test=False, lr=0.1), tmp_path, resume=True)
    ck = torch.load(tmp_path / "last.pt", weights_only=True)
    assert ck["epoch"] == 2
    assert [g["lr"] for g in ck["optimizer"]["param_groups"]] == [0.1]
    assert ck["config"]["lr"] == 0.1
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["lr"] == 0.1
    assert m["resumes"] == [{"epoch": 1, "changed": {"epochs": [1, 2], "lr": [0.01, 0.1]}}]


def test_protocols_set_only_what_differs_from_the_defaults():
    defaults = config.TrainConfig().to_dict()
    for name in ("mini.yaml", "wavefake.yaml"):
        raw = load_yaml(REPO / "configs" / name)
        same = {k for k, v in raw.items() if defaults[k] == v}
        assert not same, f"{name} repeats TrainConfig defaults {same}: one source of defaults"


def test_book_run_matrix_is_valid_and_quick_overrides_apply():
    from gpwave import book

    matrix = book.run_matrix()
    assert matrix["chapter_run"] in matrix["runs"]
    for name, params in book.detector_runs(quick=False).items():
        overrides = dict(params["overrides"])
        if str(overrides.get("init", "")).startswith(book.RESULTS):
            overrides.pop("init")  # another run of the build: it exists once that run trained
        ((_, cfg),) = train.read_config(REPO / params["protocol_file"], overrides)
        expected = {"spk_dcnn": "dcnn", "spk_nodil": "dcnn_nodil", "speakers": "dcnn"}
        assert cfg.model == expected.get(name, name[: len(cfg.model)])
        quick = {**overrides, **matrix["quick"]}
        ((_, fast),) = train.read_config(REPO / params["protocol_file"], quick)
        assert fast.seeds == [0] and fast.epochs == 1 and fast.limit_test == 8
        assert fast.max_steps is None and fast.patience is None  # one tiny epoch in CI
        assert fast.publish is None  # a quick build never replaces a published model
    linear = book.detector_runs(quick=False)["linear"]["overrides"]
    assert linear["lr"] == 0.01 and linear["epochs"] == 100
    plan = {e.name: e for e in book.plan(False, "res", "data/wavefake-mini")}
    spk = plan["03_train-spk_nodil"]
    assert spk.parameters["overrides"]["init"] == "res/runs/dcnn_nodil/seed0/best.pt"
    assert spk.deps == ("03_train-dcnn_nodil",)


@pytest.mark.parametrize("doc", ["README.md", "book/reproduce.md"])
def test_paper_protocol_reads_the_tree_the_documented_arrange_writes(doc, monkeypatch, tmp_path):
    """`gpwave data arrange ... --out X` in the docs, then configs/wavefake.yaml reads X."""
    import re

    monkeypatch.setenv("GPWAVE_DATA", str(tmp_path))
    text = (REPO / doc).read_text().replace("\\\n", " ")
    outs = re.findall(r"gpwave data arrange [^\n]*--out (\S+)", text)
    assert outs, f"{doc} has no arrange command"
    raw = yaml.safe_load((REPO / "configs" / "wavefake.yaml").read_text())
    for out in outs:
        assert config.resolve_path(out) == config.resolve_path(raw["data_dir"])


def test_max_steps_stops_at_exactly_that_many_optimiser_steps(tree, tmp_path):
    """A step budget ends mid-epoch; Adam's own step counter agrees."""
    cfg = cfg_of(tree, epochs=1, max_steps=7, eval_test=False)  # epochs is not a limit
    m = train.train_one(cfg, tmp_path, seed=0)
    ck = torch.load(tmp_path / "last.pt", weights_only=True)
    assert int(ck["optimizer"]["state"][0]["step"]) == 7
    assert m["steps"] == ck["step"] == 7 and m["stopped"] == "max_steps"
    n_train = m["n_train_frames"]  # batches of 16; a last batch of < 2 frames is dropped
    per_epoch = n_train // 16 + (n_train % 16 >= 2)
    assert len(m["history"]) == -(-7 // per_epoch) > 1


def test_early_stopping_after_patience_evaluations_without_improvement(tree, tmp_path):
    """lr 0: nothing improves after the first validation, so patience 2 stops after 3."""
    cfg = cfg_of(tree, epochs=10, lr=0.0, patience=2, eval_test=False)
    with pytest.warns(runs.ConvergenceWarning):
        m = train.train_one(cfg, tmp_path, seed=1)
    assert [h["epoch"] for h in m["history"]] == [1, 2, 3]
    assert m["best"]["epoch"] == 1 and m["stopped"] == "patience"


def test_better_needs_more_than_min_delta():
    best = {"epoch": 1, "val_eer": 0.10, "val_loss": 0.30}
    assert train._better({"val_eer": 0.05, "val_loss": 0.9}, best, min_delta=0.01)
    assert not train._better({"val_eer": 0.095, "val_loss": 0.9}, best, min_delta=0.01)
    assert train._better({"val_eer": 0.10, "val_loss": 0.25}, best, min_delta=0.01)
    assert not train._better({"val_eer": 0.10, "val_loss": 0.295}, best, min_delta=0.01)
    assert not train._better({"val_eer": 0.11, "val_loss": 0.01}, best)


def test_a_model_left_at_chance_is_flagged_unconverged(tree, tmp_path):
    """An untrained probe (lr 0) ends near EER 0.5: warned, and metrics.json says so."""
    cfg = cfg_of(tree, epochs=2, lr=0.0, eval_test=False)
    with pytest.warns(runs.ConvergenceWarning, match="NOT CONVERGED"):
        m = train.train_one(cfg, tmp_path, seed=1)
    assert abs(m["best"]["val_eer"] - 0.5) <= 0.15  # the premise: it is at chance
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["converged"] is False and "near chance" in saved["convergence"]
    assert runs.convergence_note(saved).startswith("seed 1: NOT CONVERGED")
    assert runs.convergence({"val_eer": 0.02, "val_loss": 0.1, "epoch": 3}, 0.2)["converged"]


@pytest.mark.slow
def test_compiled_training_agrees_with_eager(tree, tmp_path):
    """`compile: true` trains the same model: the same losses up to float rounding."""
    kw = {"model": "dcnn_nodrop", "max_steps": 4, "lr": 0.001, "eval_test": False}
    eager = train.train_one(cfg_of(tree, **kw, threads=1), tmp_path / "eager", seed=0)
    comp = train.train_one(cfg_of(tree, **kw, threads=1, compile=True), tmp_path / "c", seed=0)
    assert comp["steps"] == eager["steps"] == 4
    for h1, h2 in zip(eager["history"], comp["history"], strict=True):
        assert h2["train_loss"] == pytest.approx(h1["train_loss"], abs=0.01)
        assert h2["val_loss"] == pytest.approx(h1["val_loss"], abs=0.01)


def test_bf16_training_is_close_to_fp32_and_deterministic(tree, tmp_path):
    """`precision: bf16` trains the same model up to bfloat16 rounding, the same each time."""
    kw = {"model": "lcnn", "max_steps": 4, "lr": 0.001, "eval_test": False, "threads": 1}
    fp32 = train.train_one(cfg_of(tree, **kw), tmp_path / "fp32", seed=0)
    bf16 = train.train_one(cfg_of(tree, **kw, precision="bf16"), tmp_path / "a", seed=0)
    train.train_one(cfg_of(tree, **kw, precision="bf16"), tmp_path / "b", seed=0)
    _assert_same_run(tmp_path / "a" / "last.pt", tmp_path / "b" / "last.pt")
    for h1, h2 in zip(fp32["history"], bf16["history"], strict=True):
        assert h2["train_loss"] == pytest.approx(h1["train_loss"], abs=0.02)
        assert h2["val_loss"] == pytest.approx(h1["val_loss"], abs=0.02)
    assert [h["train_loss"] for h in fp32["history"]] != [h["train_loss"] for h in bf16["history"]]


def test_loader_workers_train_bit_identically_to_none(tree, tmp_path):
    """Reader processes change where frames are read, not the run (dropout RNG included)."""
    cfg = cfg_of(tree, model="lcnn", epochs=2, eval_test=False, lr=0.001, workers=0)
    train.train_one(cfg, tmp_path / "w0", seed=1)
    cfg2 = cfg_of(tree, model="lcnn", epochs=2, eval_test=False, lr=0.001, workers=2)
    train.train_one(cfg2, tmp_path / "w2", seed=1)
    _assert_same_run(tmp_path / "w0" / "last.pt", tmp_path / "w2" / "last.pt")


def test_negative_loader_workers_are_a_config_error(tree):
    with pytest.raises(ConfigError, match="workers.*-1.*>= 0"):
        cfg_of(tree, workers=-1)
    assert frames.loader_workers(cfg_of(tree), "cpu") == 0
    assert frames.loader_workers(cfg_of(tree, workers=3), "cpu") == 3
    assert 0 <= frames.loader_workers(cfg_of(tree), "cuda") <= 4


# --- init, augment, freeze, publish ------------------------------------------------------
GAIN = {"kind": "gain", "strengths": [-6], "p": 1.0}


def test_augmented_run_differs_from_a_plain_one_and_resumes_identically(tree, tmp_path):
    noise = {"kind": "white-noise", "strengths": [0, 5], "p": 1.0}
    cfg = cfg_of(tree, epochs=3, eval_test=False, augment=[noise], cache_features=True)
    train.train_one(cfg, tmp_path / "full", seed=1)
    with pytest.raises(Stop):
        train.train_one(cfg, tmp_path / "cut", seed=1, callback=_interrupt_after(1))
    train.train_one(cfg, tmp_path / "cut", seed=1, resume=True)
    _assert_same_run(tmp_path / "full" / "last.pt", tmp_path / "cut" / "last.pt")
    train.train_one(cfg_of(tree, epochs=3, eval_test=False), tmp_path / "plain", seed=1)
    wa, wp = _state(tmp_path / "full" / "last.pt")[0], _state(tmp_path / "plain" / "last.pt")[0]
    assert not torch.equal(wa["model.fc.weight"], wp["model.fc.weight"])


@pytest.mark.filterwarnings("ignore::gpwave.runs.ConvergenceWarning")
def test_frozen_parameters_and_batchnorm_stay_fixed(tree, tmp_path):
    cfg = cfg_of(tree, model="dcnn", epochs=1, eval_test=False, lr=0.01, freeze=["cnn"])
    train.train_one(cfg, tmp_path / "r", seed=0)
    torch.manual_seed(0)  # as the run does before building its detector
    start = train.initial_detector(cfg, 5512)[0].model.state_dict()
    end = _state(tmp_path / "r" / "last.pt")[0]
    cnn = [k for k in start if k.startswith("cnn.")]
    assert cnn and all(torch.equal(start[k], end["model." + k]) for k in cnn)
    assert not torch.equal(start["fc.weight"], end["model.fc.weight"])
    with pytest.raises(ConfigError, match="freeze='conv'"):
        train.read_config(base_config(*tree, model="dcnn", freeze=["conv"]))


def test_init_refuses_a_conflicting_feature_or_model_naming_both():
    with pytest.raises(ConfigError) as err:
        train.read_config({"init": "paper-sym5", "feature": {"kind": "stft"}})
    assert "kind='stft' but init has 'packets'" in str(err.value)
    with pytest.raises(ConfigError, match="model='lcnn' but init has 'dcnn'"):
        train.read_config({"init": "paper-sym5", "model": "lcnn"})
    with pytest.raises(ConfigError, match="init='nowhere.pt'"):
        train.read_config({"init": "nowhere.pt"})


def test_publish_writes_weights_and_provenance_that_load_by_name(tree, tmp_path, monkeypatch):
    from gpwave import hub

    monkeypatch.setenv("GPWAVE_DATA", str(tmp_path / "data"))
    init = tmp_path / "init"
    train.train_one(cfg_of(tree, epochs=1, eval_test=False), init, seed=0)
    raw = base_config(*tree, epochs=2, publish="my-robust", init=str(init / "best.pt"),
                      augment=[GAIN])  # fmt: skip
    (res,) = train.run_config(raw, tmp_path / "out")
    pt = tmp_path / "data" / "models" / "my-robust.pt"
    assert res["published"] == str(pt)
    prov = json.loads(pt.with_suffix(".json").read_text())
    best = tmp_path / "out" / "seed0" / "best.pt"
    assert prov["md5"] == _md5(pt) == _md5(best)
    assert prov["init_md5"] == _md5(init / "best.pt")
    assert prov["config"]["augment"] == [GAIN] and prov["config"]["publish"] == "my-robust"
    assert prov["data_manifest_hash"] == json.loads((best.parent / "metrics.json").read_text())[
        "data_manifest_hash"]  # fmt: skip
    assert {"git_commit", "validation", "date", "command"} <= set(prov)
    assert prov["command"].startswith("gpwave train ")
    det = hub.resolve("my-robust")
    ref = torch.load(best, weights_only=True)["model"]
    assert all(torch.equal(v, ref[k]) for k, v in det.state_dict().items())
    with pytest.raises(ConfigError, match="publish names one model"):
        train.run_config({**raw, "seeds": [[0], [1]]}, tmp_path / "grid")


@pytest.mark.filterwarnings("ignore::gpwave.runs.ConvergenceWarning")
def test_freeze_batchnorm_keeps_running_statistics_and_trains_the_rest(tree, tmp_path):
    cfg = cfg_of(tree, model="dcnn", epochs=1, eval_test=False, lr=0.01, freeze_batchnorm=True)
    train.train_one(cfg, tmp_path / "r", seed=0)
    torch.manual_seed(0)
    start = train.initial_detector(cfg, 5512)[0].model.state_dict()
    end = _state(tmp_path / "r" / "last.pt")[0]
    stats = [k for k in start if k.endswith(("running_mean", "running_var"))]
    assert stats and all(torch.equal(start[k], end["model." + k]) for k in stats)
    assert not torch.equal(start["cnn.0.weight"], end["model.cnn.0.weight"])


def test_distillation_targets_the_init_model_on_clean_frames(tree, tmp_path):
    init = tmp_path / "init"
    train.train_one(cfg_of(tree, epochs=1, eval_test=False), init, seed=0)
    cfg = cfg_of(tree, epochs=1, eval_test=False, init=str(init / "best.pt"), distill=1.0)
    store = prepare_store(frames.data_config(cfg), store_dir=cfg.store_dir)
    rows = select_frames(store, "train", ["melgan"])
    teacher = Detector.load(init / "best.pt")
    with torch.no_grad():
        ref = torch.softmax(teacher(torch.from_numpy(store.read(rows))), -1)
    torch.testing.assert_close(train.teacher_targets(cfg, store, rows, "cpu"), ref)
    losses = {}
    for w in (1.0, 0.0):
        run = train.train_one(cfg_of(tree, epochs=1, eval_test=False, init=str(init / "best.pt"),
                                     distill=w, lr=1e-6), tmp_path / f"d{w}", seed=0)  # fmt: skip
        losses[w] = run["history"][0]["train_loss"]
    assert losses[1.0] < 1e-4 < 0.05 < losses[0.0]  # the student starts as the teacher: KL ~ 0
    with pytest.raises(ConfigError, match="distill=0.5: distillation needs a teacher"):
        config.TrainConfig(distill=0.5)


# --- nothing lost (issue 21 items 1, 13, 16) ------------------------------------------------
def test_training_into_an_existing_out_refuses_and_keeps_the_old_files(tree, tmp_path):
    raw = base_config(*tree, epochs=1, eval_test=False)
    train.run_config(raw, tmp_path / "a")
    files = {p: p.read_bytes() for p in (tmp_path / "a").rglob("*") if p.is_file()}
    with pytest.raises(ConfigError) as err:
        train.run_config({**raw, "lr": 0.1}, tmp_path / "a")
    assert str(tmp_path / "a") in str(err.value)
    assert all(k in str(err.value) for k in ("--resume", "new --out", "--overwrite"))
    assert {p: p.read_bytes() for p in (tmp_path / "a").rglob("*") if p.is_file()} == files
    train.run_config({**raw, "lr": 0.1}, tmp_path / "a", overwrite=True)
    assert yaml.safe_load((tmp_path / "a" / "seed0" / "config.yaml").read_text())["lr"] == 0.1


def test_resume_into_a_folder_without_a_run_refuses(tree, tmp_path):
    with pytest.raises(ConfigError, match="no run of this config has a last.pt"):
        train.run_config(base_config(*tree, epochs=1), tmp_path / "empty", resume=True)
    assert not (tmp_path / "empty" / "seed0").exists()


def test_a_full_disk_while_training_is_one_error_and_leaves_no_tmp(tree, tmp_path, monkeypatch):
    import errno

    def full(obj, f):
        open(f, "wb").write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runs.torch, "save", full)
    with pytest.raises(DataError, match="could not be written \\(the disk is full\\)"):
        train.train_one(cfg_of(tree, epochs=1, eval_test=False), tmp_path / "r", seed=0)
    assert not [p for p in (tmp_path / "r").iterdir() if p.suffix == ".tmp"]
