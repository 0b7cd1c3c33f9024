from __future__ import annotations

import json
import math
import os
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from _signals import SR, chirp, make_tree, noise, tone, write_wav

from gpwave import data, store
from gpwave.data import DataConfig
from gpwave.errors import AudioError, AudioWarning, DataError
from gpwave.store import FrameStore, prepare_store, select_frames

# --- discovery ----------------------------------------------------------------------------


def test_discover_sources_labels_and_names(tmp_path):
    make_tree(tmp_path)
    sources = data.discover_sources(tmp_path)
    assert [s.folder for s in sources] == ["A_ljspeech", "B_melgan", "C_hifigan"]
    assert [s.label for s in sources] == [0, 1, 1]
    assert [s.name for s in sources] == ["ljspeech", "melgan", "hifigan"]
    assert len(sources[0].files()) == 6


def test_discover_sources_only_use_by_name_or_folder(tmp_path):
    make_tree(tmp_path)
    by_name = data.discover_sources(tmp_path, only_use=["ljspeech", "melgan"])
    by_folder = data.discover_sources(tmp_path, only_use=["A_ljspeech", "B_melgan"])
    assert (
        [s.folder for s in by_name] == [s.folder for s in by_folder] == ["A_ljspeech", "B_melgan"]
    )
    with pytest.raises(DataError, match="waveglow"):
        data.discover_sources(tmp_path, only_use=["waveglow"])


def test_folder_without_prefix_and_empty_folder_are_ignored_with_warning(tmp_path):
    make_tree(tmp_path)
    write_wav(tmp_path / "melgan_noprefix" / "LJ001-0001_gen.wav", tone(440, 2.0))
    (tmp_path / "D_empty").mkdir()
    with pytest.warns(UserWarning) as rec:
        sources = data.discover_sources(tmp_path)
    messages = " ".join(str(w.message) for w in rec)
    assert "melgan_noprefix" in messages and "prefix" in messages
    assert "D_empty" in messages and "no .wav" in messages
    assert [s.folder for s in sources] == ["A_ljspeech", "B_melgan", "C_hifigan"]


def test_nothing_valid_left_is_an_error(tmp_path):
    write_wav(tmp_path / "melgan" / "x.wav", tone(440, 2.0))
    (tmp_path / "B_empty").mkdir()
    with pytest.warns(UserWarning), pytest.raises(DataError, match=str(tmp_path)):
        data.discover_sources(tmp_path)


def test_missing_root_is_an_error(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match="nowhere"):
        data.discover_sources(missing)
    with pytest.raises(DataError, match="nowhere"):
        prepare_store(DataConfig(missing), store_dir=tmp_path / "s", progress=False)


@pytest.mark.parametrize(
    "name, utt",
    [
        ("LJ016-0433_1s_gen.wav", "LJ016-0433"),
        ("LJ008-0217_generated.wav", "LJ008-0217"),
        ("LJ008-0217.wav", "LJ008-0217"),
        ("/a/B_melgan/LJ050-0029_gen.wav", "LJ050-0029"),
        ("prompt_17_gen.wav", "prompt_17"),
    ],
)
def test_utterance_id(name, utt):
    assert data.utterance_id(name) == utt


# --- decoding -----------------------------------------------------------------------------


def test_load_audio_pcm16_matches_soundfile(tmp_path):
    p = write_wav(tmp_path / "a.wav", chirp(seconds=1.5))
    ref, _ = sf.read(p, dtype="float32")
    x = data.load_audio(p)
    assert x.dtype == np.float32 and x.shape == ref.shape
    np.testing.assert_array_equal(x, ref)


def test_load_audio_8bit_and_float32(tmp_path):
    x = chirp(seconds=1.0)
    p8 = write_wav(tmp_path / "u8.wav", x, subtype="PCM_U8")
    pf = write_wav(tmp_path / "f32.wav", x, subtype="FLOAT")
    assert sf.info(p8).subtype == "PCM_U8" and sf.info(pf).subtype == "FLOAT"
    np.testing.assert_allclose(data.load_audio(p8), x, atol=1 / 128 + 1e-6)
    np.testing.assert_array_equal(data.load_audio(pf), x)


def _pcm32(path: Path, seconds: float = 2.0) -> np.ndarray:
    """A PCM_32 wav of int32 samples (full scale and detail below 16-bit resolution)."""
    rng = np.random.default_rng(3)
    raw = rng.integers(-(2**31), 2**31 - 1, size=int(seconds * SR), dtype=np.int64)
    raw[:4] = [2**31 - 1, -(2**31), 1000, -1000]  # extremes, and |x| < 2**-16 of full scale
    raw = raw.astype(np.int32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, raw, SR, subtype="PCM_32")
    return raw


def test_load_audio_pcm32_is_int32_over_2_31(tmp_path):
    p = tmp_path / "p32.wav"
    raw = _pcm32(p)
    got, _ = sf.read(p, dtype="int32")  # soundfile's raw read, no scaling
    assert sf.info(p).subtype == "PCM_32" and np.array_equal(got, raw)
    x = data.load_audio(p)
    ref = raw.astype(np.float64) / 2**31
    np.testing.assert_allclose(x, ref, rtol=2**-24, atol=0)  # float32 rounding only
    assert x[2] != 0 and abs(x[2] - 1000 / 2**31) < 1e-12  # finer than 16 bits survives


def test_store_of_pcm32_files_keeps_the_scale(tmp_path):
    raw = _pcm32(tmp_path / "root" / "A_ljspeech" / "LJ001-0001.wav")
    _pcm32(tmp_path / "root" / "B_melgan" / "LJ001-0001_gen.wav")
    ref = raw[:SR].astype(np.float64) / 2**31
    for dtype in ("int16", "float16"):
        cfg = DataConfig(tmp_path / "root", dtype=dtype)
        store = prepare_store(cfg, store_dir=tmp_path / dtype, progress=False)
        frame = store.read([0])[0]
        if dtype == "int16":  # the int16 store rounds to 1/32768 (float32 decoding: +-1 step)
            want = np.clip(np.round(ref * 32768), -32768, 32767) / 32768
            np.testing.assert_allclose(frame, want, rtol=0, atol=1 / 32768 + 1e-9)
            assert np.mean(frame == want) > 0.99
        else:  # float16: within one float16 step of the exact value
            np.testing.assert_allclose(frame, ref, rtol=2**-10, atol=2**-24)


def test_load_audio_real_pcm32_file(shared_speakers):
    for f in sorted((shared_speakers / "vctk" / "D_melgan").glob("*.wav")):
        assert sf.info(f).subtype == "PCM_32"
        raw, _ = sf.read(f, dtype="int32")
        np.testing.assert_allclose(data.load_audio(f), raw / 2**31, rtol=2**-24, atol=0)


def test_speakers_trees_are_letter_prefixed_with_their_real_folder(shared_speakers):
    from gpwave.download import registry

    trees = registry()["speakers"]["trees"]
    assert trees == {"vctk": "vctk", "tts": "ljspeech"}
    for tree, real in trees.items():
        sources = data.discover_sources(shared_speakers / tree)
        assert [s.name for s in sources if s.label == 0] == [real]
        assert sources[0].folder == f"A_{real}" and len(sources) == {"vctk": 7, "tts": 9}[tree]
        assert all(len(s.files()) == 5 for s in sources)


def test_file_table_groups_the_speakers_files_by_utterance(shared_speakers):
    from gpwave.download import registry

    pattern = registry()["speakers"]["utterance_pattern"]
    t = data.file_table(shared_speakers / "vctk", utterance_pattern=pattern)
    assert list(t.columns) == ["file", "folder", "generator", "label", "utterance"]
    assert len(t) == 35 and t.label.sum() == 30
    assert sorted(t.utterance.unique()) == ["1", "2", "3", "4", "5"]
    assert (t.groupby("utterance").folder.nunique() == 7).all()
    row = t[t.file.str.endswith("ms_mg_3.wav")].iloc[0]
    assert (row.folder, row.generator, row.label, row.utterance) == ("D_melgan", "melgan", 1, "3")
    assert set(data.file_table(shared_speakers / "tts", pattern).generator) >= {"ljspeech"}


def test_file_table_default_ids_and_unmatched_pattern(tmp_path):
    root = make_tree(tmp_path)
    t = data.file_table(root)
    assert set(t.utterance) == {data.utterance_id(f) for f in t.file}
    assert t.utterance.str.match(r"^LJ\d{3}-\d{4}$").all()
    with pytest.raises(DataError, match=r"A_ljspeech/.*\.wav.*utterance_pattern"):
        data.file_table(root, utterance_pattern=r"_(\d+)$")


def test_load_audio_stereo_is_mixed_to_mono(tmp_path):
    left, right = tone(440), noise()
    p = write_wav(tmp_path / "st.wav", np.stack([left, right], axis=1), subtype="FLOAT")
    np.testing.assert_allclose(data.load_audio(p), (left + right) / 2, atol=1e-7)


def test_load_audio_48k_is_resampled_like_librosa_soxr(tmp_path):
    x = chirp(100, 9000, 2.0, sr=48000)
    p = write_wav(tmp_path / "48k.wav", x, sr=48000, subtype="FLOAT")
    ours = data.load_audio(p, 22050)
    ref = librosa.resample(x, orig_sr=48000, target_sr=22050, res_type="soxr_hq")
    assert ours.shape == ref.shape == (44100,)
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_load_audio_8k_is_refused(tmp_path):
    p = write_wav(tmp_path / "8k.wav", tone(440, 2.0, sr=8000), sr=8000)
    with pytest.raises(AudioError, match="8k.wav.*8000 Hz.*upsampling"):
        data.load_audio(p, 22050)


def test_non_audio_file_with_wav_name(tmp_path):
    p = tmp_path / "notes.wav"
    p.write_text("this is not audio\n" * 10)
    with pytest.raises(AudioError, match="notes.wav.*cannot be decoded"):
        data.load_audio(p)


def test_truncated_header_is_an_error(tmp_path):
    p = write_wav(tmp_path / "t.wav", tone(440, 2.0))
    p.write_bytes(p.read_bytes()[:30])
    with pytest.raises(AudioError, match="t.wav"):
        data.load_audio(p)


def test_truncated_data_yields_the_samples_present(tmp_path):
    p = write_wav(tmp_path / "t.wav", tone(440, 2.0))
    raw = p.read_bytes()
    p.write_bytes(raw[: 44 + 2 * 30000])  # header claims 44100 samples, 30000 remain
    with pytest.warns(AudioWarning, match=r"t.wav: truncated: the header declares 88200 bytes"):
        x = data.load_audio(p)
    assert len(x) == 30000 and np.isfinite(x).all()


def test_a_whole_file_gives_no_truncation_warning(tmp_path, recwarn):
    data.load_audio(write_wav(tmp_path / "t.wav", tone(440, 2.0)))
    assert not [w for w in recwarn if issubclass(w.category, AudioWarning)]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_samples_are_refused(tmp_path, bad):
    x = tone(440, 1.5)
    x[100] = bad
    p = write_wav(tmp_path / "nan.wav", x, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav.*NaN or infinite"):
        data.load_audio(p)


def test_empty_wav_is_an_error(tmp_path):
    p = write_wav(tmp_path / "empty.wav", np.zeros(0, np.float32))
    with pytest.raises(AudioError, match="empty.wav.*no samples"):
        data.load_audio(p)


def test_frame_audio_drops_the_tail_and_never_pads():
    x = np.arange(10 * 7 + 3, dtype=np.float32)
    frames = data.frame_audio(x, 7)
    assert frames.shape == (10, 7)
    np.testing.assert_array_equal(frames, x[:70].reshape(10, 7))
    assert data.frame_audio(x[:6], 7).shape == (0, 7)


# --- splits -------------------------------------------------------------------------------


def test_split_is_a_function_of_the_utterance_and_seed():
    utts = [f"LJ{i // 1000:03d}-{i % 1000:04d}" for i in range(5000)]
    a = [data.split_of(u, (0.8, 0.1, 0.1), 0) for u in utts]
    assert a == [data.split_of(u, (0.8, 0.1, 0.1), 0) for u in utts]
    counts = pd.Series(a).value_counts(normalize=True)
    assert abs(counts["train"] - 0.8) < 0.03 and abs(counts["val"] - 0.1) < 0.02
    b = [data.split_of(u, (0.8, 0.1, 0.1), 1) for u in utts]
    assert a != b


def test_assign_splits_pins_test_only_utterances_everywhere():
    index = pd.DataFrame(
        {
            "utterance": [f"U{i}" for i in range(200)] * 2,
            "folder": ["A_ljspeech"] * 200 + ["O_kbpwg"] * 200,
            "generator": ["ljspeech"] * 200 + ["kbpwg"] * 200,
        }
    )
    index.loc[200:, "utterance"] = [f"U{i}" for i in range(100)] + [f"V{i}" for i in range(100)]
    split = data.assign_splits(index, DataConfig(".", only_test_folders=["kbpwg"]))
    assert (split[index.folder == "O_kbpwg"] == "test").all()
    pinned = set(index.utterance[index.folder == "O_kbpwg"])
    assert (split[index.utterance.isin(pinned)] == "test").all()
    assert set(split[~index.utterance.isin(pinned)]) == {"train", "val", "test"}


# --- the store ----------------------------------------------------------------------------


@pytest.fixture
def bad_tree(tmp_path):
    root = make_tree(tmp_path / "root", seconds=2.5)
    a = root / "A_ljspeech"
    write_wav(a / "LJ009-0001.wav", chirp(seconds=3.2, sr=48000), sr=48000)  # resampled
    write_wav(a / "LJ009-0002.wav", tone(300, 2.0, sr=8000), sr=8000)  # refused
    write_wav(a / "LJ009-0003.wav", np.stack([tone(300, 2.0), noise(2.0)], 1))  # stereo
    write_wav(a / "LJ009-0004.wav", tone(300, 0.5))  # shorter than a window
    write_wav(a / "LJ009-0005.wav", np.zeros(2 * SR, np.float32))  # silence
    (a / "LJ009-0006.wav").write_text("not audio")
    x = tone(300, 2.0)
    x[7] = np.nan
    write_wav(a / "LJ009-0007.wav", x, subtype="FLOAT")
    write_wav(a / "LJ009-0008.wav", tone(300, 2.0, amp=0.9), subtype="PCM_U8")
    write_wav(a / "LJ009-0009.wav", tone(300, 2.0), subtype="FLOAT")
    p = write_wav(a / "LJ009-0010.wav", tone(300, 2.0))
    p.write_bytes(p.read_bytes()[:20])  # corrupt header
    return root


def test_prepare_store_reports_and_skips_bad_files(bad_tree, tmp_path):
    store = prepare_store(DataConfig(bad_tree), store_dir=tmp_path / "store", progress=False)
    problems = {
        Path(f).name: p for f, p in zip(store.skipped.file, store.skipped.problem, strict=True)
    }
    assert set(problems) == {
        "LJ009-0002.wav",
        "LJ009-0004.wav",
        "LJ009-0006.wav",
        "LJ009-0007.wav",
        "LJ009-0010.wav",
    }
    assert "upsampling" in problems["LJ009-0002.wav"]
    assert "shorter than one window" in problems["LJ009-0004.wav"]
    assert "cannot be decoded" in problems["LJ009-0006.wav"]
    assert "NaN" in problems["LJ009-0007.wav"]
    per_file = store.index.groupby(store.index.file.map(lambda f: Path(f).name)).size()
    assert per_file["LJ009-0001.wav"] == 3  # 3.2 s at 48 kHz -> 3 frames at 22.05 kHz
    assert per_file["LJ009-0003.wav"] == 2
    assert per_file["LJ001-0001.wav"] == 2  # 2.5 s -> 2 frames, the tail is dropped
    silent = store.index[store.index.file.str.endswith("LJ009-0005.wav")]
    assert len(silent) == 2 and silent.silent.all() and not store.index.silent.iloc[0]
    frames = store.read(silent.row.to_numpy())
    assert np.isfinite(frames).all() and (frames == 0).all()


def test_store_frames_match_soundfile_reference(bad_tree, tmp_path):
    store = prepare_store(DataConfig(bad_tree), store_dir=tmp_path / "store", progress=False)
    rng = np.random.default_rng(0)
    rows = rng.choice(len(store), size=20, replace=False)
    got = store.read(rows)
    for k, row in enumerate(rows):
        r = store.index.iloc[row]
        assert r.row == row
        info = sf.info(r.file)
        if info.samplerate != SR or info.channels != 1:
            continue
        ref, _ = sf.read(r.file, start=r.offset, stop=r.offset + SR, dtype="float32")
        np.testing.assert_allclose(got[k], ref, atol=1 / 32768)
    assert got.dtype == np.float32 and got.shape == (20, SR)
    assert np.abs(got).max() <= 1.0


def test_float16_store(tmp_path):
    root = make_tree(tmp_path / "root", seconds=2.0)
    cfg = DataConfig(root, dtype="float16")
    store = prepare_store(cfg, store_dir=tmp_path / "s", progress=False)
    r = store.index.iloc[5]
    ref, _ = sf.read(r.file, start=r.offset, stop=r.offset + SR, dtype="float32")
    np.testing.assert_allclose(store.read([5])[0], ref.astype(np.float16), atol=0)
    with pytest.raises(ValueError, match="dtype"):
        prepare_store(DataConfig(root, dtype="int8"), store_dir=tmp_path / "t", progress=False)


def test_second_prepare_reuses_the_store(tmp_path, monkeypatch):
    root = make_tree(tmp_path / "root", seconds=2.0)
    cfg = DataConfig(root)
    first = prepare_store(cfg, store_dir=tmp_path / "s", progress=False)

    def boom(*a, **k):
        raise AssertionError("decoded again")

    monkeypatch.setattr(data, "load_audio", boom)
    second = prepare_store(cfg, store_dir=tmp_path / "s", progress=False)
    pd.testing.assert_frame_equal(first.index, second.index)
    opened = FrameStore.open(tmp_path / "s")
    pd.testing.assert_frame_equal(first.index, opened.index)
    np.testing.assert_array_equal(opened.read([0, 3]), first.read([0, 3]))


def test_default_store_dir_under_gpwave_data(tmp_path, monkeypatch):
    monkeypatch.setenv("GPWAVE_DATA", str(tmp_path / "gd"))
    root = make_tree(tmp_path / "root", {"A_ljspeech": ["LJ001-0001"]}, seconds=1.0)
    store = prepare_store(DataConfig(root), progress=False)
    assert store.path.parent == tmp_path / "gd" / "stores"
    assert len(store) == 1


def test_interrupted_prepare_keeps_finished_folders(tmp_path, monkeypatch):
    root = make_tree(tmp_path / "root", seconds=2.0)
    cfg = DataConfig(root)
    real_load = data.load_audio
    calls = []

    def interrupt_in_b(path, sample_rate=22050, upsample=False):
        if "B_melgan" in str(path):
            raise KeyboardInterrupt
        calls.append(Path(path).parent.name)
        return real_load(path, sample_rate)

    monkeypatch.setattr(data, "load_audio", interrupt_in_b)
    with pytest.raises(KeyboardInterrupt):
        prepare_store(cfg, store_dir=tmp_path / "s", progress=False)
    assert (tmp_path / "s" / "shards" / "A_ljspeech" / "COMPLETE.json").is_file()
    assert not (tmp_path / "s" / "shards" / "B_melgan" / "COMPLETE.json").exists()

    calls.clear()

    def counting(path, sample_rate=22050, upsample=False):
        calls.append(Path(path).parent.name)
        return real_load(path, sample_rate)

    monkeypatch.setattr(data, "load_audio", counting)
    store = prepare_store(cfg, store_dir=tmp_path / "s", progress=False)
    assert sorted(set(calls)) == ["B_melgan", "C_hifigan"]
    assert store.index.folder.value_counts().to_dict() == {
        "A_ljspeech": 12,
        "B_melgan": 12,
        "C_hifigan": 6,
    }
    # a changed file invalidates only its folder's shard
    calls.clear()
    f = root / "C_hifigan" / "LJ001-0001_gen.wav"
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    prepare_store(cfg, store_dir=tmp_path / "s", progress=False)
    assert set(calls) == {"C_hifigan"}


def test_store_index_columns_and_layout(tmp_path):
    root = make_tree(tmp_path / "root", seconds=2.0)
    store = prepare_store(DataConfig(root), store_dir=tmp_path / "s", progress=False)
    for col in ["row", "file", "offset", "label", "generator", "folder", "utterance", "split"]:
        assert col in store.index.columns
    np.testing.assert_array_equal(store.index.row, np.arange(len(store)))
    assert set(store.index.offset) == {0, SR}
    meta = json.loads((tmp_path / "s" / "store.json").read_text())
    assert meta["frame_length"] == SR and meta["dtype"] == "int16"
    arr = np.load(tmp_path / "s" / "shards" / "B_melgan" / "frames.npy", mmap_mode="r")
    assert isinstance(arr, np.memmap) and arr.dtype == np.int16
    assert store.sample_rate == SR and store.frame_length == SR


# --- selecting and loading ----------------------------------------------------------------


@pytest.fixture
def small_store(tmp_path):
    folders = {
        "A_ljspeech": [f"LJ001-{i:04d}" for i in range(40)],
        "B_melgan": [f"LJ001-{i:04d}" for i in range(40)],
        "C_hifigan": [f"LJ001-{i:04d}" for i in range(10)],
    }
    root = make_tree(tmp_path / "root", folders, seconds=2.0)
    return prepare_store(DataConfig(root), store_dir=tmp_path / "s", progress=False)


def test_select_frames_balances_and_caps(small_store):
    idx = small_store.index
    rows = select_frames(small_store, "train", ["melgan"], seed=3)
    sel = idx.iloc[rows]
    assert (sel.split == "train").all()
    assert set(sel.generator) == {"ljspeech", "melgan"}
    assert (sel.generator == "ljspeech").sum() == (sel.generator == "melgan").sum()
    rows_all = select_frames(small_store, "train", seed=3)
    n_fake = ((idx.split == "train") & (idx.label == 1)).sum()
    n_real = ((idx.split == "train") & (idx.label == 0)).sum()
    assert len(rows_all) == 2 * min(n_fake, n_real)
    capped = select_frames(small_store, "train", ["B_melgan"], limit=5, seed=3)
    assert len(capped) == 10
    np.testing.assert_array_equal(
        capped, select_frames(small_store, "train", ["melgan"], limit=5, seed=3)
    )
    assert not np.array_equal(
        capped, select_frames(small_store, "train", ["melgan"], limit=5, seed=4)
    )
    only_fake = select_frames(small_store, "test", ["hifigan"], real=None, balance=False)
    assert set(idx.iloc[only_fake].generator) <= {"hifigan"}
    unbalanced = select_frames(small_store, "train", ["melgan"], balance=False)
    assert (
        len(unbalanced)
        == ((idx.split == "train") & (idx.label != 1)).sum()
        + ((idx.split == "train") & (idx.generator == "melgan")).sum()
    )
    with pytest.raises(DataError, match="waveglow"):
        select_frames(small_store, "train", ["waveglow"])
    with pytest.raises(ValueError, match="split"):
        select_frames(small_store, "training")


def test_summarize(tmp_path):
    root = make_tree(tmp_path / "root", seconds=2.5)
    write_wav(root / "C_hifigan" / "LJ009-0001_gen.wav", tone(300, 0.5))
    table = data.summarize(root)
    assert list(table.columns[:6]) == ["folder", "generator", "label", "files", "seconds", "frames"]
    row = table.set_index("folder").loc["C_hifigan"]
    assert row.files == 3 and row.frames == 6 and row.skipped == 1
    assert row.seconds == pytest.approx(7.5)
    assert table.label.tolist() == [0, 1, 1]


# --- other corpora ------------------------------------------------------------------------


def test_read_asvspoof2019_la(tmp_path):
    flac = tmp_path / "flac"
    for utt in ["LA_T_1138215", "LA_T_1271820"]:
        write_wav(flac / f"{utt}.flac", tone(300, 1.2, sr=16000), sr=16000)
    proto = tmp_path / "ASVspoof2019.LA.cm.train.trn.txt"
    proto.write_text("LA_0079 LA_T_1138215 - - bonafide\nLA_0079 LA_T_1271820 - A01 spoof\n\n")
    df = data.read_asvspoof2019_la(proto, audio_dir=flac)
    assert df.label.tolist() == [0, 1] and df.system.tolist() == ["-", "A01"]
    assert df.speaker.tolist() == ["LA_0079"] * 2
    assert all(Path(f).is_file() for f in df.file)
    assert len(data.load_audio(df.file[0], 16000)) == 19200


@pytest.mark.parametrize(
    "line, match",
    [("LA_0079 LA_T_1 - bonafide", "expected 5 fields"), ("LA_0079 LA_T_1 - - fake", "fake")],
)
def test_read_asvspoof2019_la_malformed(tmp_path, line, match):
    proto = tmp_path / "p.txt"
    proto.write_text(f"LA_0079 LA_T_0 - - bonafide\nLA_0079 LA_T_2 - A02 spoof\n{line}\n")
    with pytest.raises(DataError, match=rf"p.txt:3: .*{match}"):
        data.read_asvspoof2019_la(proto)
    with pytest.raises(DataError, match="does not exist"):
        data.read_asvspoof2019_la(tmp_path / "missing.txt")


def test_read_in_the_wild(tmp_path):
    for i in range(2):
        write_wav(tmp_path / f"{i}.wav", tone(300, 1.0, sr=16000), sr=16000)
    meta = tmp_path / "meta.csv"
    meta.write_text(
        "file,speaker,label\n0.wav,Alec Guinness,spoof\n1.wav,Alec Guinness,bona-fide\n"
    )
    df = data.read_in_the_wild(meta)
    assert df.label.tolist() == [1, 0] and df.speaker.tolist() == ["Alec Guinness"] * 2
    assert all(Path(f).is_file() for f in df.file)
    meta.write_text("file,speaker,label\n0.wav,A,spoof\n1.wav,A,fake\n")
    with pytest.raises(DataError, match=r"meta.csv:3: .*'fake'"):
        data.read_in_the_wild(meta)
    meta.write_text("file,label\n0.wav,spoof\n")
    with pytest.raises(DataError, match="speaker"):
        data.read_in_the_wild(meta)


# --- the real mini benchmark --------------------------------------------------------------


@pytest.fixture(scope="session")
def mini_store(mini_root, tmp_path_factory):
    cfg = DataConfig(mini_root)
    return prepare_store(cfg, store_dir=tmp_path_factory.mktemp("mini_store"), progress=False)


def test_mini_frame_counts_match_manifest(mini_store, shared_mini):
    manifest = pd.read_csv(shared_mini / "MANIFEST.tsv", sep="\t")
    manifest["folder"] = manifest.file.str.split("/").str[0]
    expected = manifest.groupby("folder").seconds.apply(
        lambda s: sum(math.floor(v + 1e-9) for v in s)
    )
    got = mini_store.index.groupby("folder").size()
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_names=False)
    assert len(mini_store.skipped) == 0


def test_mini_no_utterance_in_two_splits(mini_store):
    idx = mini_store.index
    assert idx.groupby("utterance").split.nunique().max() == 1
    shared = idx[idx.utterance.isin([f"LJ050-{i:04d}" for i in range(29, 34)])]
    assert shared.folder.nunique() >= 13  # A, O-Z
    assert shared.groupby("utterance").split.nunique().max() == 1
    assert set(idx.split) == {"train", "val", "test"}


def test_mini_only_test_folders(mini_store, mini_root, tmp_path):
    cfg = DataConfig(mini_root, only_test_folders=["O_kbpwg", "wavenet"])
    store = prepare_store(cfg, store_dir=mini_store.path, progress=False)
    idx = store.index
    assert (idx[idx.folder.isin(["O_kbpwg", "U_wavenet"])].split == "test").all()
    pinned = [f"LJ050-{i:04d}" for i in range(29, 34)]
    real = idx[(idx.folder == "A_ljspeech") & idx.utterance.isin(pinned)]
    assert len(real) > 0 and (real.split == "test").all()
    assert idx.groupby("utterance").split.nunique().max() == 1
    prepare_store(DataConfig(mini_root), store_dir=mini_store.path, progress=False)


# --- command line -------------------------------------------------------------------------


def test_cli_data_info_and_prepare(tmp_path, capsys):
    from gpwave import cli

    root = make_tree(tmp_path / "root", seconds=2.0)
    assert cli.main(["data", "info", str(root), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["folder"] for r in rows] == ["A_ljspeech", "B_melgan", "C_hifigan"]
    assert [r["frames"] for r in rows] == [12, 12, 6]
    store = tmp_path / "store"
    args = ["data", "prepare", str(root), "--store", str(store), "--only-use", "ljspeech"]
    assert cli.main([*args, "melgan", "--dtype", "float16", "--seed", "3"]) == 0
    assert capsys.readouterr().out.strip() == str(store)
    opened = FrameStore.open(store)
    assert opened.dtype == "float16" and set(opened.index.folder) == {"A_ljspeech", "B_melgan"}
    assert cli.main(["data", "info", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_concurrent_prepares_build_each_shard_once(tmp_path):
    import subprocess
    import sys

    root = make_tree(tmp_path / "root", seconds=2.0)
    code = (
        "import sys; from gpwave import data; from gpwave.store import prepare_store; "
        "s = prepare_store(data.DataConfig(sys.argv[1]), store_dir=sys.argv[2], "
        "progress=False); print(len(s))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(root), str(tmp_path / "s")],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0] and outs == ["30"] * 3
    assert not list((tmp_path / "s" / "shards").glob("*.partial"))


def test_utterance_rows(mini_root):
    rows = data.utterance_rows(mini_root, "LJ050-0029")
    assert rows[0]["kind"] == "real" and rows[0]["folder"] == "A_ljspeech"
    assert {r["folder"] for r in rows} >= {"O_kbpwg", "Z_r9y9pwg3spec"}
    assert all(Path(r["audio"]).is_file() and r["seconds"] > 1 for r in rows)
    assert all(data.utterance_id(r["audio"]) == "LJ050-0029" for r in rows)
    with pytest.raises(DataError, match="LJ999-9999"):
        data.utterance_rows(mini_root, "LJ999-9999")


@pytest.mark.slow
def test_prepare_memory_stays_at_one_file(tmp_path):
    """Peak RSS grows by about one decoded file, not by the store's size (streamed writes)."""
    import subprocess
    import sys

    root = tmp_path / "root"
    rng = np.random.default_rng(0)
    for i in range(40):  # 40 x 60 s: a 106 MB int16 store
        x = (0.1 * rng.standard_normal(60 * SR)).astype(np.float32)
        write_wav(root / "B_melgan" / f"LJ001-{i:04d}_gen.wav", x)
    write_wav(root / "A_ljspeech" / "LJ001-0000.wav", tone(300, 2.0))
    code = (
        "import resource, sys; from gpwave import data; from gpwave.store import prepare_store; "
        "import torch, soxr, librosa; "
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
        "run = len(sys.argv) > 2 and prepare_store(data.DataConfig(sys.argv[1]), "
        "store_dir=sys.argv[2], progress=False); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(root), str(tmp_path / "s")],
        capture_output=True,
        text=True,
        check=True,
    )
    grown_mb = int(out.stdout.strip()) / 1024
    store_mb = (tmp_path / "s" / "shards" / "B_melgan" / "frames.npy").stat().st_size / 2**20
    assert store_mb > 100
    print(f"peak RSS +{grown_mb:.0f} MB for a {store_mb:.0f} MB store")
    assert grown_mb < 50, f"peak RSS grew by {grown_mb:.0f} MB for a {store_mb:.0f} MB store"


def test_lock_falls_back_when_the_file_system_refuses_flock(tmp_path, monkeypatch):
    import fcntl

    def refuse(fh, op):
        raise OSError(37, "No locks available")  # ENOLCK, as on some NFS/Lustre mounts

    monkeypatch.setattr(fcntl, "flock", refuse)
    ran = []
    with pytest.warns(UserWarning, match="locking is not supported"):
        with store._locked(tmp_path / "lock"):
            ran.append(True)
    assert ran == [True]


def test_temporary_names_are_unique_across_hosts_sharing_a_file_system(tmp_path, monkeypatch):
    """Two nodes may run prepare with the same process id: names carry a uuid too."""
    moved = []
    real_replace = os.replace

    def record(src, dst):
        moved.append(Path(src).name)
        real_replace(src, dst)

    monkeypatch.setattr(store.os, "replace", record)
    monkeypatch.setattr(store.os, "getpid", lambda: 4242)  # the same pid on two nodes
    store._atomic_write_text(tmp_path / "store.json", "{}")
    store._atomic_write_text(tmp_path / "store.json", "{}")
    assert len(moved) == 2 and moved[0] != moved[1]
    assert all(name.startswith(".store.json.4242.") for name in moved)
    assert not list(tmp_path.glob(".*.tmp"))
