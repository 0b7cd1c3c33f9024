"""The train / evaluate / detect sub-commands, end to end on a tiny synthetic tree."""

import argparse
import errno
import json
import os
import time

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from _detector_data import base_config, make_detector_tree

import gpwave
from gpwave.cli import build_parser, main

KEYS = {"generator", "n_frames", "eer", "eer_ci_low", "eer_ci_high", "accuracy", "eer_argmax"}


def _no_nan(token):
    raise AssertionError(f"invalid JSON constant {token}")


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
    assert main(["detect", str(ckpt), str(fake), str(real), str(junk), "--json"]) == 1
    reports = json.loads(capsys.readouterr().out, parse_constant=_no_nan)
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


def _parsers(parser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_every_argument_of_every_command_has_help():
    parsers = list(_parsers(build_parser()))
    assert len(parsers) >= 11  # gpwave, data + 4, train, evaluate, detect, fingerprint, book
    for parser in parsers:
        assert parser.description, parser.prog
        assert parser.formatter_class is argparse.ArgumentDefaultsHelpFormatter, parser.prog
        for action in parser._actions:
            assert action.help and action.help.strip(), f"{parser.prog} {action.dest}"
        text = parser.format_help()
        for action in parser._actions:
            shown = action.default not in (None, False, argparse.SUPPRESS)
            if shown and action.option_strings and action.dest != "help":
                assert f"(default: {action.default})" in text, f"{parser.prog} {action.dest}"


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert (
        exit_.value.code == 0 and capsys.readouterr().out.strip() == f"gpwave {gpwave.__version__}"
    )


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["detect"])
    assert exit_.value.code == 2


def test_detect_exit_status_means_something_and_json_is_strict(trained, capsys, tmp_path):
    root, ckpt, _ = trained
    fake = root / "B_melgan" / "LJ001-0003_gen.wav"
    junk = tmp_path / "junk.wav"
    junk.write_text("not audio")
    assert main(["detect", str(ckpt), str(fake), "--json"]) == 0
    capsys.readouterr()
    assert main(["detect", str(ckpt), str(junk), str(tmp_path / "none.wav"), "--json"]) == 1
    captured = capsys.readouterr()
    reports = json.loads(captured.out, parse_constant=_no_nan)
    assert [r["score"] for r in reports] == [None, None]
    assert "2 of 2 files not scored" in captured.err


def test_detect_names_missing_paths_directories_and_unreadable_files(trained, capsys, tmp_path):
    root, ckpt, _ = trained
    junk = tmp_path / "junk.wav"
    junk.write_text("not audio")
    locked = tmp_path / "locked.wav"
    locked.write_bytes((root / "A_ljspeech" / "LJ001-0001.wav").read_bytes())
    locked.chmod(0)
    paths = [tmp_path / "missing.wav", tmp_path, junk, locked]
    assert main(["detect", str(ckpt), *map(str, paths), "--json"]) == 1
    errors = [r["error"] for r in json.loads(capsys.readouterr().out)]
    assert errors[0] == f"{tmp_path / 'missing.wav'}: no such file"
    assert errors[1] == f"{tmp_path}: is a directory, not an audio file"
    assert errors[2] == f"{junk}: cannot be decoded as audio (Format not recognised)"
    assert "System error" not in " ".join(errors)
    if os.geteuid() != 0:  # root reads any file
        assert errors[3] == f"{locked}: permission denied (the file is not readable)"


def test_detect_warns_about_a_file_truncated_mid_data(trained, capsys, tmp_path):
    root, ckpt, _ = trained
    whole = (root / "B_melgan" / "LJ001-0003_gen.wav").read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole[: len(whole) // 2 + 1])  # header says 1 s, half of it is there
    assert main(["detect", str(ckpt), str(cut), "--json"]) == 0
    captured = capsys.readouterr()
    (report,) = json.loads(captured.out)
    assert 1 <= len(report["scores"]) < 4 and "truncated" in report["warning"]
    assert f"gpwave: warning: {cut}: truncated" in captured.err


def test_detect_shows_progress_within_a_long_file(trained, capsys, tmp_path):
    from _signals import noise, write_wav

    from gpwave import detect

    _, ckpt, _ = trained
    long = tmp_path / "long_recording.wav"
    write_wav(long, noise(0.25 * (detect.LONG_FILE_WINDOWS + 1)))
    detect.detect_files(ckpt, [long], device="cpu", progress=True)
    assert "long_recording.wav" in capsys.readouterr().err  # the per-file window bar


@pytest.mark.parametrize("cmd", ["evaluate", "detect"])
def test_device_option(trained, capsys, cmd, monkeypatch):
    root, ckpt, tmp = trained
    monkeypatch.setenv("GPWAVE_DATA", str(tmp / "gpwave_data"))
    arg = str(root) if cmd == "evaluate" else str(root / "A_ljspeech" / "LJ001-0001.wav")
    assert main([cmd, str(ckpt), arg, "--device", "cpu", "--json"]) == 0
    if not torch.cuda.is_available():
        assert main([cmd, str(ckpt), arg, "--device", "cuda"]) == 2
        assert "CUDA is not available" in capsys.readouterr().err


@pytest.mark.parametrize(
    "setting", ["epochs=ten", "lr=fast", "seeds=0", "batch_size=0", "epoch=3", "epochs=0", "lr"]
)
def test_train_config_mistakes_exit_2_with_one_line_and_no_run_folder(trained, capsys, setting):
    _, _, tmp = trained
    out = tmp / f"bad-{setting}"
    assert main(["train", str(tmp / "cfg.yaml"), "--out", str(out), "--set", setting]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gpwave: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert setting.split("=")[0] in err
    assert not out.exists()


def test_train_missing_config_file(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o")]) == 2
    assert "nope.yaml: cannot read the config" in capsys.readouterr().err


def test_train_set_lr_4e_minus_4_is_a_float(trained, tmp_path):
    root, _, tmp = trained
    out = tmp_path / "runs"
    args = ["train", str(tmp / "cfg.yaml"), "--out", str(out), "--set", "epochs=1"]
    assert main([*args, "--set", "lr=4e-4", "--set", "eval_test=false"]) == 0
    conf = yaml.safe_load((out / "seed0" / "config.yaml").read_text())
    assert conf["lr"] == 0.0004
    ck = torch.load(out / "seed0" / "last.pt", weights_only=True)
    assert ck["optimizer"]["param_groups"][0]["lr"] == 0.0004


@pytest.mark.parametrize(("key", "value"), [("sample_rate", 0), ("n_samples", 0)])
def test_crafted_checkpoint_spec_is_a_clear_error(trained, capsys, tmp_path, key, value):
    root, ckpt, _ = trained
    ck = torch.load(ckpt, weights_only=True)
    if key == "sample_rate":
        ck["detector"]["feature"]["sample_rate"] = value
    else:
        ck["detector"][key] = value
    crafted = tmp_path / "crafted.pt"
    torch.save(ck, crafted)
    wav = root / "A_ljspeech" / "LJ001-0001.wav"
    assert main(["detect", str(crafted), str(wav)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gpwave: error: {crafted}: not a usable gpwave checkpoint")
    assert f"{key}={value}" in err and "Traceback" not in err


def test_models_lists_the_paper_detectors(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("GPWAVE_DATA", str(tmp_path))
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["paper-sym5", "paper-stft"]
    assert all(r["licence"] == "EUPL-1.2" and len(r["commit"]) == 40 for r in rows[:2])


def test_an_unknown_model_name_is_a_clear_error(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("GPWAVE_DATA", str(tmp_path))
    assert main(["detect", "--model", "my-model", "a.wav"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gpwave: error: my-model: not a released model (paper-sym5")
    assert "--model:" not in err and "Traceback" not in err


def test_detect_and_evaluate_with_a_published_model(tmp_path, monkeypatch, capsys):
    from _detector_data import base_config, make_detector_tree

    from gpwave import train

    monkeypatch.setenv("GPWAVE_DATA", str(tmp_path / "data"))
    root = make_detector_tree(tmp_path / "tree")
    raw = base_config(root, tmp_path / "store", epochs=1, publish="my-model")
    train.run_config(raw, tmp_path / "out")
    wav = next((root / "B_melgan").glob("*.wav"))
    assert main(["detect", "--model", "my-model", str(wav), "--json"]) == 0
    (report,) = json.loads(capsys.readouterr().out)
    by_path = main(["detect", str(tmp_path / "out" / "seed0" / "best.pt"), str(wav), "--json"])
    assert by_path == 0 and json.loads(capsys.readouterr().out)[0]["scores"] == report["scores"]
    assert main(["evaluate", "--model", "my-model", str(root), "--json", "--n-boot", "10"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["generator"] for r in rows} >= {"melgan"}


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


# --- bad input: one line, exit 2 for usage/data errors, exit 1 when some inputs failed ----
def _one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if "error" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    "argv, match",
    [
        (["detect", "x.pt", "a.wav", "--threshold", "nan"], "--threshold"),
        (["detect", "x.pt", "a.wav", "--threshold", "-1"], "--threshold"),
        (["detect", "x.pt", "a.wav", "--threshold", "2"], "--threshold"),
        (["detect", "x.pt", "a.wav", "--device", "foo"], "--device"),
        (["evaluate", "x.pt", "d", "--device", "foo"], "--device"),
        (["evaluate", "x.pt", "d", "--n-boot", "-1"], "--n-boot"),
        (["fingerprint", "d", "--out", "o", "--level", "30"], "--level"),
        (["fingerprint", "d", "--out", "o", "--level", "0"], "--level"),
        (["fingerprint", "d", "--out", "o", "--wavelet", "nope"], "--wavelet"),
        (["fingerprint", "d", "--out", "o", "--max-frames", "0"], "--max-frames"),
        (["data", "prepare", "d", "--seconds", "inf"], "--seconds"),
        (["data", "prepare", "d", "--sample-rate", "0"], "--sample-rate"),
    ],
)
def test_bad_option_values_are_usage_errors_before_any_work(argv, match, capsys):
    t0 = time.monotonic()
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and time.monotonic() - t0 < 5
    assert match in _one_error_line(capsys.readouterr().err)


def test_fingerprint_levels_are_checked_before_allocating(tmp_path):
    from gpwave import fingerprints
    from gpwave.cli import MAX_LEVEL
    from gpwave.transforms import MAX_LEVEL as TRANSFORMS_MAX_LEVEL

    assert MAX_LEVEL == TRANSFORMS_MAX_LEVEL
    t0 = time.monotonic()
    with pytest.raises(ValueError, match="level=30"):
        fingerprints.mean_packet_spectrum(np.zeros((1, 4096), np.float32), level=30)
    with pytest.raises(ValueError, match="nope"):
        fingerprints.mean_packet_spectrum(np.zeros((1, 4096), np.float32), wavelet="nope")
    assert time.monotonic() - t0 < 5


def _tree(root, folders):
    """Folders -> list of (name, samples or bytes); 22.05 kHz 16-bit wavs or raw bytes."""
    from _signals import noise, write_wav

    for folder, files in folders.items():
        for k, (name, x) in enumerate(files):
            path = root / folder / name
            if isinstance(x, bytes):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(x)
            else:
                write_wav(path, x if x is not None else noise(1.0, seed=k))
    return root


def _good(n):
    return [(f"LJ001-{i:04d}.wav", None) for i in range(n)]


@pytest.mark.parametrize(
    "folders, match",
    [
        ({"B_melgan": _good(3)}, "no usable real"),
        ({"A_ljspeech": [("LJ001-0001.wav", b"junk")], "B_melgan": _good(3)}, "no usable real"),
        ({"A_ljspeech": _good(3)}, "no usable fake"),
    ],
)
def test_evaluate_without_real_or_fake_frames_is_one_line_exit_2(
    trained, capsys, tmp_path, monkeypatch, folders, match
):
    _, ckpt, _ = trained
    monkeypatch.setenv("GPWAVE_DATA", str(tmp_path / "gpwave_data"))
    root = _tree(tmp_path / "tree", folders)
    assert main(["evaluate", str(ckpt), str(root), "--n-boot", "0"]) == 2
    assert match in _one_error_line(capsys.readouterr().err)


def test_evaluate_and_prepare_exit_1_and_name_the_skipped_files(
    trained, capsys, tmp_path, monkeypatch
):
    _, ckpt, _ = trained
    monkeypatch.setenv("GPWAVE_DATA", str(tmp_path / "gpwave_data"))
    bad = ("LJ001-0009_gen.wav", b"not audio")
    root = _tree(tmp_path / "tree", {"A_ljspeech": _good(4), "B_melgan": _good(4) + [bad]})
    assert main(["evaluate", str(ckpt), str(root), "--n-boot", "0", "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)[0]["generator"] == "melgan"
    assert f"gpwave: skipped {root / 'B_melgan' / bad[0]}: cannot be decoded" in captured.err
    assert main(["data", "prepare", str(root), "--store", str(tmp_path / "store")]) == 1
    assert f"gpwave: skipped {root / 'B_melgan' / bad[0]}" in capsys.readouterr().err


def test_data_info_does_not_count_a_nan_file(tmp_path, capsys):
    x = np.full(22050 * 2, 0.1, np.float32)
    x[7] = np.nan
    root = _tree(tmp_path / "tree", {"A_ljspeech": _good(1)})
    sf.write(root / "A_ljspeech" / "LJ001-0009.wav", x, 22050, subtype="FLOAT")
    assert main(["data", "info", str(root), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["files"] == 1 and row["frames"] == 1 and row["skipped"] == 1


@pytest.mark.parametrize("where", ["file", "uncreatable"])
def test_gpwave_data_that_is_not_a_usable_folder_is_one_line(tmp_path, monkeypatch, capsys, where):
    root = _tree(tmp_path / "tree", {"A_ljspeech": _good(1)})
    target = tmp_path / "a_file"
    target.write_text("x")
    monkeypatch.setenv("GPWAVE_DATA", str(target if where == "file" else target / "sub"))
    assert main(["data", "prepare", str(root)]) == 2
    assert str(target) in _one_error_line(capsys.readouterr().err)


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device", "frames.npy")


def test_a_full_disk_in_prepare_is_one_line_and_leaves_no_partial_shard(
    tmp_path, monkeypatch, capsys
):
    from gpwave import store as frame_store

    root = _tree(tmp_path / "tree", {"A_ljspeech": _good(2)})
    monkeypatch.setattr(frame_store, "_decode_into", _full_disk)
    store = tmp_path / "store"
    assert main(["data", "prepare", str(root), "--store", str(store)]) == 2
    assert "No space left on device" in _one_error_line(capsys.readouterr().err)
    assert not [p for p in store.rglob("*") if ".partial" in p.name or p.suffix == ".tmp"]


def test_a_full_disk_in_fingerprint_is_one_line(tmp_path, monkeypatch, capsys):
    from gpwave import plots

    root = _tree(tmp_path / "tree", {"A_ljspeech": _good(2), "B_melgan": _good(2)})
    monkeypatch.setattr(plots, "write_wav", _full_disk)
    argv = ["fingerprint", str(root), "--out", str(tmp_path / "fp"), "--level", "4"]
    assert main([*argv, "--device", "cpu"]) == 2
    assert "No space left on device" in _one_error_line(capsys.readouterr().err)


class _Hostile:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_a_checkpoint_holding_code_is_refused_in_plain_words(trained, tmp_path, capsys):
    root, _, _ = trained
    evil = tmp_path / "evil.pt"
    torch.save({"detector": _Hostile(), "model": {}}, evil)
    wav = root / "A_ljspeech" / "LJ001-0001.wav"
    assert main(["detect", str(evil), str(wav)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "holds pickled code" in line and "was not loaded" in line
    assert "weights_only=False" not in line and "corrupt" not in line


def test_detect_says_when_a_file_has_no_verdict(trained, tmp_path, capsys):
    from _signals import write_wav

    _, ckpt, _ = trained
    silent = write_wav(tmp_path / "silent.wav", np.zeros(22050 * 2, np.float32))
    assert main(["detect", str(ckpt), str(silent), "--json"]) == 0
    captured = capsys.readouterr()
    (report,) = json.loads(captured.out, parse_constant=_no_nan)
    assert report["verdict"] is None and report["score"] is None
    assert report["n_silent"] == len(report["scores"]) == 8  # 0.25 s windows
    assert f"{silent}: no verdict: no window with speech energy" in captured.err


def test_a_download_error_of_a_named_model_is_not_labelled_as_a_bad_name(
    capsys, tmp_path, monkeypatch
):
    """Issue 21 item 17: a missing mirror read as ``--model: ...`` (a wrong name)."""
    monkeypatch.setenv("GPWAVE_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("GPWAVE_MODELS_MIRROR", str(tmp_path / "missing"))
    assert main(["detect", "--model", "paper-sym5", "a.wav"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gpwave: error: ") and "--model:" not in err
    assert "missing" in err and "Traceback" not in err
