"""Fingerprint spectra, audible fingerprints and `gpwave fingerprint`, against references."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import pywt
import scipy.signal
import soundfile as sf
import torch
from _signals import SR, make_tree, noise, tone, write_wav

from gpwave import cli
from gpwave import fingerprints as fp
from gpwave.errors import DataError
from gpwave.store import prepare_store


def _pywt_packets(frames: np.ndarray, wavelet: str, level: int, mode: str) -> np.ndarray:
    """|coefficients| (k, 2**level, T) in frequency order, node by node with PyWavelets."""
    out = []
    for x in frames.astype(np.float64):
        wp = pywt.WaveletPacket(x, wavelet, mode=mode, maxlevel=level)
        out.append(np.stack([n.data for n in wp.get_level(level, order="freq")]))
    return np.abs(np.stack(out))


def _spectrum(mean: np.ndarray, generator: str = "g", label: int = 1) -> fp.FingerprintSpectrum:
    level = int(np.log2(len(mean)))
    freqs = (np.arange(len(mean)) + 0.5) * SR / 2 / len(mean)
    return fp.FingerprintSpectrum(
        generator, mean, 0.1 * mean, 10, freqs, "haar", level, label=label, folder=f"X_{generator}"
    )


# --- streamed statistics ------------------------------------------------------------------
@pytest.mark.parametrize(("wavelet", "level", "mode"), [("haar", 5, "reflect"), ("db2", 4, "zero")])
def test_streamed_spectrum_equals_pywt_over_all_frames(wavelet, level, mode):
    rng = np.random.default_rng(1)
    blocks = [rng.standard_normal((n, 512)).astype(np.float32) for n in (3, 1, 4)]
    spec = fp.mean_packet_spectrum(blocks, wavelet, level, mode=mode, batch_size=2)
    ref = _pywt_packets(np.concatenate(blocks), wavelet, level, mode)
    assert spec.n_frames == 8
    np.testing.assert_allclose(spec.mean, ref.mean(axis=(0, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(spec.std, ref.std(axis=(0, 2)), rtol=1e-4, atol=1e-6)
    expected_freqs = (np.arange(2**level) + 0.5) * SR / 2 ** (level + 1)
    np.testing.assert_allclose(spec.frequencies, expected_freqs)


def test_no_frames_is_a_data_error():
    with pytest.raises(DataError, match="no frames"):
        fp.mean_packet_spectrum([], "haar", 4, generator="empty")


# --- synthetic signals --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("wavelet", "level", "tolerance"),
    # 1 s frames resolve ~1 Hz: at level 14 (0.67 Hz bands) the peak may sit one band over.
    [("haar", 8, 0), ("db8", 8, 0), ("sym5", 10, 0), ("haar", 14, 1)],
)
def test_tone_peaks_in_its_band(wavelet, level, tolerance):
    band_width = SR / 2 / 2**level
    k = int(0.3 * 2**level)
    f = (k + 0.5) * band_width  # hand computation: centre of band k
    spec = fp.mean_packet_spectrum(tone(f, 3.0).reshape(3, -1), wavelet, level)
    assert abs(int(spec.mean.argmax()) - k) <= tolerance
    assert spec.frequencies[k] == pytest.approx(f)


@pytest.mark.parametrize("wavelet", ["haar", "db4"])
def test_white_noise_gives_a_flat_spectrum(wavelet):
    sigma = 0.1
    spec = fp.mean_packet_spectrum(noise(20.0, amp=sigma).reshape(20, -1), wavelet, 6)
    expected = np.sqrt(2 / np.pi) * sigma  # E|N(0, sigma^2)|, orthogonal transform
    np.testing.assert_allclose(spec.mean, expected, rtol=0.08)
    np.testing.assert_allclose(spec.std, np.sqrt(1 - 2 / np.pi) * sigma, rtol=0.08)


def test_difference_db_by_hand_and_incompatible_spectra():
    real = _spectrum(np.array([1.0, 2.0, 4.0, 8.0]), "ljspeech", 0)
    fake = _spectrum(np.array([10.0, 2.0, 0.4, 8.0]))
    np.testing.assert_allclose(fp.difference_db(fake, real, floor=0), [20, 0, -20, 0], atol=1e-9)
    other = _spectrum(np.ones(8))
    with pytest.raises(ValueError, match="spectra differ"):
        fp.difference_db(other, real)


def test_spectrum_save_load_roundtrip(tmp_path):
    spec = _spectrum(np.linspace(1, 2, 16), "melgan")
    back = fp.FingerprintSpectrum.load(spec.save(tmp_path / "s" / "melgan.npz"))
    assert (back.generator, back.wavelet, back.level, back.n_frames, back.label, back.folder) == (
        "melgan", "haar", 4, 10, 1, "X_melgan",
    )  # fmt: skip
    np.testing.assert_array_equal(back.mean, spec.mean)
    np.testing.assert_array_equal(back.frequencies, spec.frequencies)
    with pytest.raises(DataError):
        fp.FingerprintSpectrum.load(tmp_path / "missing.npz")


# --- audible fingerprints -----------------------------------------------------------------
def _target(level: int = 10) -> np.ndarray:
    rng = np.random.default_rng(3)
    mag = 0.05 + 0.02 * np.abs(rng.standard_normal(2**level))
    mag[[100, 420, 777]] = [1.5, 0.8, 1.0]  # generator-like spikes
    return mag


@pytest.mark.parametrize("wavelet", ["haar", "db4"])
def test_inverse_packets_inverts_pywt(wavelet):
    x = np.random.default_rng(4).standard_normal(1024)
    wp = pywt.WaveletPacket(x, wavelet, mode="periodization", maxlevel=5)
    coeffs = np.stack([n.data for n in wp.get_level(5, order="freq")])
    np.testing.assert_allclose(fp.inverse_packets(coeffs, wavelet), x, atol=1e-10)


def test_audible_packets_spectrum_follows_the_fingerprint():
    mag = _target()
    x = fp.audible_fingerprint(mag, method="packets", seconds=2.0)
    assert x.dtype == np.float32 and len(x) == 2 * SR
    assert np.abs(x).max() == pytest.approx(10 ** (-3 / 20), rel=1e-4)
    measured = _pywt_packets(x[None], "haar", 10, "periodization").mean(axis=(0, 2))
    assert np.corrcoef(measured, mag)[0, 1] > 0.9


def test_audible_fft_spectrum_follows_the_fingerprint():
    mag = _target()
    x = fp.audible_fingerprint(mag, method="fft", seconds=2.0, peak_dbfs=-6.0)
    assert np.abs(x).max() == pytest.approx(10 ** (-6 / 20), rel=1e-4)
    f, psd = scipy.signal.welch(x, SR, nperseg=4096)
    edges = np.linspace(0, SR / 2, 65)
    bands = zip(edges[:-1], edges[1:], strict=True)
    measured = [psd[(f >= lo) & (f < hi)].sum() for lo, hi in bands]
    target = (mag**2).reshape(64, -1).sum(axis=1)
    assert np.corrcoef(measured, target)[0, 1] > 0.9


def test_audible_fingerprint_follows_the_difference_of_measured_spectra():
    level, real_frames = 8, noise(8.0, amp=0.05).reshape(8, -1)
    fake_frames = real_frames + tone(3000, 8.0, amp=0.05).reshape(8, -1)
    fake_frames = fake_frames + tone(7000, 8.0, amp=0.03).reshape(8, -1)
    real = fp.mean_packet_spectrum(real_frames, "haar", level, label=0, generator="real")
    fake = fp.mean_packet_spectrum(fake_frames, "haar", level, generator="fake")
    x = fp.audible_fingerprint(fake, real, seconds=2.0)
    measured = _pywt_packets(x[None], "haar", level, "periodization").mean(axis=(0, 2))
    assert np.corrcoef(measured, np.abs(fake.mean - real.mean))[0, 1] > 0.9


def test_audible_fingerprint_of_a_generator_is_its_difference_to_real(tmp_path):
    real = _spectrum(np.full(1024, 0.1), "ljspeech", 0)
    fake_mean = np.full(1024, 0.1)
    fake_mean[300] = 0.9
    fake = _spectrum(fake_mean)
    np.testing.assert_allclose(fp.fingerprint_magnitude(fake, real)[[299, 300]], [0, 0.8])
    x = fp.audible_fingerprint(fake, real, method="fft")
    spectrum = np.abs(np.fft.rfft(x))
    peak_hz = np.fft.rfftfreq(len(x), 1 / SR)[spectrum.argmax()]
    assert peak_hz == pytest.approx(fake.frequencies[300], abs=2.0)
    path = fp.write_wav(tmp_path / "a" / "fake.wav", x)
    info = sf.info(path)
    assert (info.subtype, info.samplerate) == ("PCM_16", SR)
    np.testing.assert_allclose(sf.read(path)[0], x, atol=1 / 2**15)


# --- folders, stores and the command line -----------------------------------------------------
def test_folder_spectra_of_a_tree(tmp_path):
    root = make_tree(tmp_path / "tree")
    spectra = fp.folder_spectra(root, "haar", 8)
    assert list(spectra) == ["ljspeech", "melgan", "hifigan"]
    assert [s.label for s in spectra.values()] == [0, 1, 1]
    assert [s.n_frames for s in spectra.values()] == [18, 18, 9]  # 3 frames of 1 s per file
    assert spectra["melgan"].folder == "B_melgan"
    assert fp.real_spectrum(spectra).generator == "ljspeech"


def test_folder_spectra_of_a_frame_store_match_the_tree(tmp_path):
    from gpwave import data

    root = make_tree(tmp_path / "tree")
    store = prepare_store(data.DataConfig(root=root), store_dir=tmp_path / "st", progress=False)
    from_store = fp.folder_spectra(store, "db2", 6)
    from_tree = fp.folder_spectra(root, "db2", 6)
    assert set(from_store) == set(from_tree)
    for name, spec in from_tree.items():
        assert from_store[name].n_frames == spec.n_frames
        np.testing.assert_allclose(from_store[name].mean, spec.mean, rtol=1e-5)
    only = fp.folder_spectra(store, "db2", 6, only_use=["ljspeech", "C_hifigan"])
    assert list(only) == ["ljspeech", "hifigan"]


def test_fingerprint_rows_pair_real_and_fake_clips_of_one_utterance(tmp_path):
    root = make_tree(
        tmp_path / "tree",
        {"A_ljspeech": ["LJ001-0001", "LJ001-0002"], "B_melgan": ["LJ001-0002"]},
    )
    spectra = fp.folder_spectra(root, "haar", 6)
    rows = fp.fingerprint_rows(root, spectra, out_dir=tmp_path / "wav", seconds=0.5)
    assert [r["generator"] for r in rows] == ["ljspeech", "melgan"]
    assert rows[0]["fake"] is None and len(rows[1]["fake"]) == SR
    real_same_utt = sf.read(root / "A_ljspeech" / "LJ001-0002.wav", dtype="float32")[0][:SR]
    np.testing.assert_array_equal(rows[1]["real"], real_same_utt)
    np.testing.assert_array_equal(
        rows[1]["fingerprint"],
        fp.audible_fingerprint(spectra["melgan"], spectra["ljspeech"], seconds=0.5),
    )
    written = sorted(p.name for p in (tmp_path / "wav").iterdir())
    assert written == [
        "ljspeech_fingerprint.wav", "ljspeech_real.wav",
        "melgan_fake.wav", "melgan_fingerprint.wav", "melgan_real.wav",
    ]  # fmt: skip
    with pytest.raises(DataError, match="hifigan"):
        fp.example_clip(root, "hifigan")


def test_cli_fingerprint_writes_spectra_plots_audio_and_index(tmp_path, capsys):
    root = make_tree(tmp_path / "tree")
    out = tmp_path / "fp"
    assert cli.main(["fingerprint", str(root), "--out", str(out), "--level", "10"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    index = json.loads((out / "index.json").read_text())
    assert (index["wavelet"], index["level"], index["real"]) == ("haar", 10, "ljspeech")
    assert [g["generator"] for g in index["generators"]] == ["ljspeech", "melgan", "hifigan"]
    for g in index["generators"]:
        for key in ("spectrum", "plot_png", "plot_svg", "audio"):
            assert (out / g[key]).stat().st_size > 0
        assert sf.info(out / g["audio"]).subtype == "PCM_16"
    assert (out / "plots" / index["differences"]["svg"]).is_file()
    spec = fp.FingerprintSpectrum.load(out / "spectra" / "melgan.npz")
    assert spec.level == 10 and spec.n_frames == 18


def test_cli_fingerprint_max_frames_and_device(tmp_path):
    root = make_tree(tmp_path / "tree")
    args = ["fingerprint", str(root), "--out", str(tmp_path / "o"), "--level", "5"]
    assert cli.main([*args, "--max-frames", "2", "--device", "cpu"]) == 0
    index = json.loads((tmp_path / "o" / "index.json").read_text())
    assert [g["n_frames"] for g in index["generators"]] == [2, 2, 2]
    assert (index["device"], index["frames"]) == ("cpu", 6)


def test_cli_fingerprint_reports_a_tree_without_real_folder(tmp_path, capsys):
    root = make_tree(tmp_path / "tree", {"B_melgan": ["LJ001-0001"]})
    assert cli.main(["fingerprint", str(root), "--out", str(tmp_path / "o"), "--level", "6"]) == 2
    assert "real" in capsys.readouterr().err


def test_a_folder_whose_only_file_is_too_short_names_the_file_and_why(tmp_path):
    write_wav(tmp_path / "A_ljspeech" / "LJ001-0001.wav", noise(1.5))
    write_wav(tmp_path / "B_melgan" / "LJ001-0001_gen.wav", noise(0.5))
    with pytest.raises(DataError) as err:
        fp.folder_spectra(tmp_path, level=4)
    msg = str(err.value)
    assert "B_melgan" in msg and "LJ001-0001_gen.wav: 0.50 s is shorter than one 1 s frame" in msg


def test_mean_model_input_is_the_mean_log_packet_power():
    from gpwave.models import Detector

    cfg = {"kind": "packets", "wavelet": "db2", "level": 3, "power": 2.0}
    det = Detector(cfg, "linear", 1024, level_norm=False)
    rng = np.random.default_rng(0)
    frames = rng.standard_normal((5, 1024)).astype(np.float32)
    ours = fp.mean_model_input(det, frames, batch_size=2)
    ref = []
    for x in frames.astype(np.float64):
        wp = pywt.WaveletPacket(x, "db2", mode="reflect", maxlevel=3)
        ref.append(np.log(np.stack([n.data for n in wp.get_level(3, "freq")]) ** 2 + 1e-12))
    np.testing.assert_allclose(ours, np.mean(ref, axis=(0, 2)), rtol=1e-4)


class _BandStore:
    """Frames of constant value per folder; raw features are the frame itself, 4 bands."""

    index = pd.DataFrame(
        {
            "folder": ["A_real"] * 3 + ["B_x"] * 2 + ["O_y"] * 2 + ["U_z"],
            "row": range(8),
        }
    )
    values = np.array([1.0, 2.0, 9.0, 4.0, 6.0, 3.0, 5.0, 10.0])

    def read(self, rows):
        ramp = np.arange(8, dtype=np.float32)  # bands 0..3 of two time steps each
        return np.stack([self.values[r] + ramp for r in rows]).astype(np.float32)


class _Raw(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))

    def raw_features(self, x):
        return x.reshape(len(x), 1, 4, 2)  # (n, channel, band, time)


def test_band_difference_by_hand():
    # per_folder=2: real frames 1, 2 (the third, 9, is left out); the ramp cancels
    diff = fp.band_difference(_Raw(), _BandStore(), {"B-K": "BK", "O": "O", "V": "V"}, "A", 2)
    assert list(diff) == ["B-K", "O"]  # no V folder in the store
    np.testing.assert_allclose(diff["B-K"], np.full(4, 5.0 - 1.5))
    np.testing.assert_allclose(diff["O"], np.full(4, 4.0 - 1.5))
    all_real = fp.band_difference(_Raw(), _BandStore(), {"U": "U"}, "A", None)
    np.testing.assert_allclose(all_real["U"], np.full(4, 10.0 - 4.0))


def test_band_means_by_hand():
    freqs = np.array([1000.0, 3000.0, 6000.0, 9000.0, 10000.0])
    t = fp.band_means({"a": [1, 2, 3, 4, 6], "b": [0, 0, 1, 1, 1]}, freqs, [0, 2000, 8000, 11025])
    assert list(t.index) == ["0–2 kHz", "2–8 kHz", "8–11.025 kHz"]
    assert t["a"].tolist() == [1.0, 2.5, 5.0] and t["b"].tolist() == [0.0, 0.5, 1.0]
