"""The train / evaluate / detect sub-commands, end to end on a tiny synthetic tree."""

import json

import pytest
import torch
import yaml
from _detector_data import base_config, make_detector_tree

from gpwave.cli import main

KEYS = {"generator", "n_frames", "eer", "eer_ci_low", "eer_ci_high", "accuracy", "eer_argmax"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    root = make_detector_tree(tmp / "data")
    cfg = tmp / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(base_config(root, tmp / "store", n_boot=20)))
    assert main(["train", str(cfg), "--out", str(tmp / "runs"), "--set", "epochs=4"]) == 0
    return root, tmp / "runs" / "seed0" / "best.pt", tmp


def test_train_then_resume_is_a_no_op(trained, capsys):
    _, ckpt, tmp = trained
    assert torch.load(ckpt, weights_only=True)["config"]["epochs"] == 4
    code = main(
        [
            "train",
            str(tmp / "cfg.yaml"),
            "--out",
            str(tmp / "runs"),
            "--resume",
            "--set",
            "epochs=4",
        ]
    )
    assert code == 0
    assert "seed0" in capsys.readouterr().out
    assert torch.load(tmp / "runs" / "seed0" / "last.pt", weights_only=True)["epoch"] == 4


def test_evaluate_json_rows(trained, capsys, monkeypatch):
    root, ckpt, tmp = trained
    monkeypatch.setenv("GPWAVE_DATA", str(tmp / "gpwave_data"))
    assert main(["evaluate", str(ckpt), str(root), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all(set(r) == KEYS for r in rows)
    by = {r["generator"]: r for r in rows}
    assert {"melgan", "hifigan", "pooled_unseen"} <= set(by)
    assert by["melgan"]["n_frames"] == 16 * 4 * 2  # every frame of A and B
    assert 0 <= by["melgan"]["eer_ci_low"] <= by["melgan"]["eer"] <= by["melgan"]["eer_ci_high"]


def test_evaluate_markdown(trained, capsys, monkeypatch):
    root, ckpt, tmp = trained
    monkeypatch.setenv("GPWAVE_DATA", str(tmp / "gpwave_data"))
    assert main(["evaluate", str(ckpt), str(root)]) == 0
    assert "| generator" in capsys.readouterr().out


def test_detect_json_per_window_scores(trained, capsys, tmp_path):
    root, ckpt, _ = trained
    fake = root / "B_melgan" / "LJ001-0003_gen.wav"
    real = root / "A_ljspeech" / "LJ001-0003.wav"
    junk = tmp_path / "junk.wav"
    junk.write_text("not audio")
    assert main(["detect", str(ckpt), str(fake), str(real), str(junk), "--json"]) == 0
    reports = json.loads(capsys.readouterr().out)
    assert [len(r["scores"]) for r in reports] == [4, 4, 0]
    assert reports[0]["verdict"] in ("fake", "real") and reports[0]["seconds"] == pytest.approx(
        1.0, abs=1e-3
    )
    assert all(0 <= s <= 1 for s in reports[0]["scores"])
    assert reports[0]["score"] == pytest.approx(sum(reports[0]["scores"]) / 4)
    assert reports[2]["verdict"] == "error" and "junk.wav" in reports[2]["error"]


def test_detect_plain_text(trained, capsys):
    root, ckpt, _ = trained
    fake = root / "B_melgan" / "LJ001-0003_gen.wav"
    assert main(["detect", str(ckpt), str(fake)]) == 0
    assert "LJ001-0003_gen.wav" in capsys.readouterr().out


@pytest.mark.parametrize("cmd", ["evaluate", "detect"])
def test_missing_and_corrupt_checkpoints_are_clear_errors(trained, capsys, tmp_path, cmd):
    root = trained[0]
    arg = str(root) if cmd == "evaluate" else str(root / "A_ljspeech" / "LJ001-0001.wav")
    assert main([cmd, str(tmp_path / "missing.pt"), arg]) == 2
    err = capsys.readouterr().err
    assert "missing.pt" in err and "not found" in err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage")
    assert main([cmd, str(bad), arg]) == 2
    assert "bad.pt" in capsys.readouterr().err


def test_models_lists_the_paper_detectors(capsys):
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["paper-sym5", "paper-stft"]
    assert all(r["licence"] == "EUPL-1.2" and len(r["commit"]) == 40 for r in rows)


def test_model_or_checkpoint_is_required(capsys):
    assert main(["evaluate", "somewhere"]) == 2
    assert "--model" in capsys.readouterr().err
    assert main(["detect", "--model", "paper-nonsense", "a.wav"]) == 2
    assert "paper-sym5" in capsys.readouterr().err


def test_detect_with_a_named_model(shared_models, mini_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GPWAVE_DATA", str(tmp_path))
    monkeypatch.setenv("GPWAVE_MODELS_MIRROR", str(shared_models))
    wav = mini_root / "E_fbmelgan" / "LJ001-0001_gen.wav"
    assert main(["detect", "--model", "paper-sym5", str(wav), "--json"]) == 0
    (report,) = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "fake" and len(report["scores"]) >= 1
    assert (tmp_path / "models").is_dir()
