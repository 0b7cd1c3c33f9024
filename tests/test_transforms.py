"""gpwave.transforms checked against references: pywt, librosa, scipy/numpy, hand values.

Modelled on ptwt's tests/test_packets.py: every packet transform is compared node by node,
in frequency order, with ``pywt.WaveletPacket`` over wavelets, levels, modes, batch sizes
and dtypes.
"""

from __future__ import annotations

import dataclasses

import librosa
import numpy as np
import pytest
import pywt
import scipy.fft
import scipy.signal
import torch

from gpwave.transforms import (
    FeatureConfig,
    FeatureExtractor,
    Normalizer,
    dct_matrix,
    freq_permutation,
    packet_frequencies,
    packet_length,
    stft_frequencies,
    triangular_filterbank,
    wavelet_packets,
)
from tests._signals import SR, chirp, noise, tone

MODES = ["reflect", "zero", "constant", "periodic", "symmetric"]
WAVELETS = ["haar", "db2", "sym5", "coif1", "bior2.2"]
ATOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def _signals(batch: int, n: int) -> np.ndarray:
    """``batch`` different synthetic signals (chirp + noise) of ``n`` samples, float64."""
    seconds = n / SR
    rows = [chirp(100 + 300 * b, 9000, seconds) + noise(seconds, seed=b) for b in range(batch)]
    return np.stack(rows).astype(np.float64)


def _pywt_level(x: np.ndarray, wavelet: str, level: int, mode: str, order: str) -> np.ndarray:
    """Reference: ``pywt.WaveletPacket`` nodes of one level stacked -> (2**level, T)."""
    wp = pywt.WaveletPacket(x, wavelet, mode=mode, maxlevel=level)
    return np.stack([node.data for node in wp.get_level(level, order)])


def _assert_matches_pywt(x, wavelet, level, mode, order="freq", dtype=torch.float64):
    ours = wavelet_packets(torch.tensor(x, dtype=dtype), wavelet, level, mode, order)
    assert ours.dtype == dtype
    for b in range(x.shape[0]):
        ref = _pywt_level(x[b], wavelet, level, mode, order)
        assert ours[b].shape == ref.shape
        scale = max(1.0, float(np.abs(ref).max()))
        np.testing.assert_allclose(ours[b].numpy(), ref, rtol=0, atol=ATOL[dtype] * scale)


# ----------------------------------------------------------------------------- packets


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("level", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("wavelet", WAVELETS)
def test_packets_match_pywt_freq_order(wavelet, level, mode):
    _assert_matches_pywt(_signals(2, 701), wavelet, level, mode)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batch", [1, 3, 8])
@pytest.mark.parametrize("wavelet", ["haar", "sym5", "db4"])
def test_packets_batch_and_dtype(wavelet, batch, dtype):
    x = _signals(batch, 1000).astype(np.float32).astype(np.float64)
    _assert_matches_pywt(x, wavelet, 4, "reflect", dtype=dtype)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("wavelet", ["haar", "db3", "sym5"])
def test_packets_natural_order(wavelet, mode):
    _assert_matches_pywt(_signals(2, 513), wavelet, 4, mode, order="natural")


@pytest.mark.parametrize("mode", MODES)
def test_packets_short_signal_wider_than_filter(mode):
    """Boundary extension wider than the signal itself, as pywt handles it."""
    _assert_matches_pywt(_signals(2, 23), "db8", 3, mode)


@pytest.mark.parametrize(("mode", "n"), [("reflect", 10000), ("symmetric", 2000), ("zero", 300)])
def test_packets_level_14_short_signal(mode, n):
    """pywt refuses to reflect a single sample, so reflect needs 2**13 < n samples."""
    _assert_matches_pywt(_signals(1, n), "haar", 14, mode)


def test_packets_accept_channel_axis_and_other_wavelet_objects():
    x = torch.tensor(_signals(3, 400))
    ours = wavelet_packets(x.unsqueeze(1), pywt.Wavelet("db2"), 3)
    np.testing.assert_array_equal(ours.numpy(), wavelet_packets(x, "db2", 3).numpy())
    assert ours.shape == (3, 8, packet_length(400, "db2", 3))


def test_packets_agree_with_ptwt_waveletpacket():
    ptwt = pytest.importorskip("ptwt")
    x = torch.tensor(_signals(2, 1500), dtype=torch.float32)
    wp = ptwt.WaveletPacket(x, pywt.Wavelet("sym5"), mode="reflect", maxlevel=5)
    ref = torch.stack([wp[p] for p in wp.get_level(5, "freq")], 1)
    torch.testing.assert_close(wavelet_packets(x, "sym5", 5), ref, atol=1e-5, rtol=0)


def test_freq_permutation_is_pywt_gray_code():
    level = 6
    natural = [
        n.path for n in pywt.WaveletPacket(np.zeros(128), "haar").get_level(level, "natural")
    ]
    freq = [n.path for n in pywt.WaveletPacket(np.zeros(128), "haar").get_level(level, "freq")]
    assert [natural[i] for i in freq_permutation(level)] == freq


def test_packets_are_differentiable():
    x = torch.randn(1, 12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: wavelet_packets(t, "db2", 2, "symmetric"), (x,))


def test_tone_lands_in_its_packet():
    level, freq = 5, 3273.0  # bands are 344.53 Hz wide: 3273 Hz is the centre of band 9
    coeffs = wavelet_packets(torch.tensor(tone(freq))[None], "db8", level)
    energy = (coeffs[0] ** 2).sum(-1).numpy()
    assert int(np.argmax(energy)) == int(freq // (SR / 2 / 2**level)) == 9


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"level": 0}, "level"),
        ({"level": 15}, "level"),
        ({"wavelet": "nope"}, "wavelet"),
        ({"wavelet": "morl"}, "wavelet"),
        ({"mode": "periodization"}, "mode"),
        ({"order": "tree"}, "order"),
    ],
)
def test_packets_clear_errors(kwargs, match):
    args = {"wavelet": "haar", "level": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        wavelet_packets(torch.zeros(1, 64), **args)


@pytest.mark.parametrize("x", [torch.zeros(2, 2, 64), torch.zeros(64), torch.zeros(1, 64).long()])
def test_packets_reject_bad_input(x):
    with pytest.raises(ValueError, match="expected"):
        wavelet_packets(x, "haar", 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("mode", MODES)
def test_packets_on_cuda_match_pywt(mode):
    x = _signals(4, 3000)
    ours = wavelet_packets(torch.tensor(x, device="cuda"), "sym5", 6, mode)
    assert ours.device.type == "cuda"
    for b in range(x.shape[0]):
        ref = _pywt_level(x[b], "sym5", 6, mode, "freq")
        np.testing.assert_allclose(ours[b].cpu().numpy(), ref, rtol=0, atol=1e-9)


# ----------------------------------------------------------------------------- frequencies


def test_packet_frequencies_hand_values():
    np.testing.assert_allclose(packet_frequencies(1, 22050), [2756.25, 8268.75])
    np.testing.assert_allclose(packet_frequencies(2, 8000), [500, 1500, 2500, 3500])
    # natural order: aa, ad, da, dd sit at frequency positions 0, 1, 3, 2
    np.testing.assert_allclose(packet_frequencies(2, 8000, "natural"), [500, 1500, 3500, 2500])


def test_packet_frequencies_natural_order_follows_pywt_paths():
    level = 5
    wp = pywt.WaveletPacket(np.zeros(64), "haar", maxlevel=level)
    freq = [n.path for n in wp.get_level(level, "freq")]
    natural = [n.path for n in wp.get_level(level, "natural")]
    width = 16000 / 2 / 2**level
    expected = [(freq.index(p) + 0.5) * width for p in natural]
    np.testing.assert_allclose(packet_frequencies(level, 16000, "natural"), expected)


def test_stft_frequencies_are_rfft_bins():
    np.testing.assert_allclose(stft_frequencies(256, SR), np.fft.rfftfreq(512, 1 / SR)[:256])


# ----------------------------------------------------------------------------- features


def _frames_power(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Hand-built centred power spectrogram: reflect pad, periodic Hann, rfft -> (bins, T)."""
    xp = np.pad(x, n_fft // 2, mode="reflect")
    n_frames = 1 + (len(xp) - n_fft) // hop
    frames = np.stack([xp[t * hop : t * hop + n_fft] for t in range(n_frames)])
    window = scipy.signal.get_window("hann", n_fft, fftbins=True)
    return (np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2).T


def _features(cfg: FeatureConfig, x: np.ndarray) -> np.ndarray:
    return FeatureExtractor(cfg)(torch.tensor(x)).numpy()


def test_packet_features_log_and_sign():
    x = _signals(2, 900)
    cfg = FeatureConfig(wavelet="db2", level=3, sign_channel=True, eps=1e-6)
    ours = _features(cfg, x)
    ref = _pywt_level(x[1], "db2", 3, "reflect", "freq")
    assert ours.shape == (2, 2, 8, ref.shape[-1])
    np.testing.assert_allclose(ours[1, 0], np.log(np.abs(ref) + 1e-6), atol=1e-9)
    np.testing.assert_array_equal(ours[1, 1], np.sign(ref))


def test_packet_features_power_without_log():
    x = _signals(1, 500)
    ours = _features(FeatureConfig(wavelet="haar", level=2, power=2.0, log=False), x)
    ref = _pywt_level(x[0], "haar", 2, "reflect", "freq")
    np.testing.assert_allclose(ours[0, 0], ref**2, atol=1e-10)


def test_stft_features_match_numpy():
    x = _signals(2, 4000)
    level = 6
    ours = _features(FeatureConfig(kind="stft", level=level, eps=1e-10), x)
    ref = np.log(_frames_power(x[1], 2 ** (level + 1), 2**level)[: 2**level] + 1e-10)
    assert ours.shape == (2, 1, 2**level, ref.shape[-1])
    np.testing.assert_allclose(ours[1, 0], ref, atol=1e-8)


def test_reference_stft_size_matches_numpy():
    """The paper's STFT model: odd n_fft 511 (= window), hop 220, all 256 one-sided bins."""
    x = _signals(2, 22050)
    cfg = FeatureConfig(kind="stft", stft_n_fft=511, stft_hop=220, eps=1e-12)
    ours = _features(cfg, x)
    ref = np.log(_frames_power(x[1], 511, 220) + 1e-12)
    assert ours.shape == (2, 1, 256, 101) == (2, *FeatureExtractor(cfg).output_shape(22050))
    np.testing.assert_allclose(ours[1, 0], ref, atol=1e-7)
    np.testing.assert_allclose(
        stft_frequencies(256, SR, cfg.stft_size()[0]), np.fft.rfftfreq(511, 1 / SR)
    )
    # the default stays as it was
    assert FeatureConfig(kind="stft").stft_size() == (512, 256, 256)
    with pytest.raises(ValueError, match="stft_n_fft"):
        FeatureConfig(kind="stft", stft_n_fft=1)


def test_mfcc_matches_librosa():
    """librosa's mel filterbank and MFCC on the hand-built power spectrogram.

    (``librosa.stft`` itself is left out: its first call JIT-compiles for seconds; the
    spectrogram is checked against numpy in ``test_stft_features_match_numpy``.)
    """
    x = _signals(2, 6000)
    ours = _features(FeatureConfig(kind="mfcc", sample_rate=SR), x)
    power = _frames_power(x[1], 512, 256)
    mel = librosa.feature.melspectrogram(S=power, sr=SR, n_fft=512, n_mels=20, htk=True, norm=None)
    ref = librosa.feature.mfcc(S=np.log(mel + 1e-6), n_mfcc=20, dct_type=2, norm="ortho")
    assert ours.shape == (2, 1, 20, ref.shape[-1])
    np.testing.assert_allclose(ours[1, 0], ref, atol=1e-7)


def test_mel_filterbank_matches_librosa():
    ref = librosa.filters.mel(sr=SR, n_fft=512, n_mels=20, htk=True, norm=None)
    np.testing.assert_allclose(triangular_filterbank(512, SR, 20, "mel"), ref, atol=1e-6)


def _linear_filterbank_by_hand(n_fft: int, sr: float, n_filters: int) -> np.ndarray:
    """Triangles with edges at n_filters + 2 equally spaced points, one filter at a time."""
    freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
    edges = np.linspace(0, sr / 2, n_filters + 2)
    bank = np.zeros((n_filters, len(freqs)))
    for i in range(n_filters):
        lo, mid, hi = edges[i : i + 3]
        for j, f in enumerate(freqs):
            if lo <= f <= mid:
                bank[i, j] = (f - lo) / (mid - lo)
            elif mid < f <= hi:
                bank[i, j] = (hi - f) / (hi - mid)
    return bank


def test_lfcc_matches_hand_built_reference():
    x = _signals(2, 5000)
    ours = _features(FeatureConfig(kind="lfcc", sample_rate=SR), x)
    bank = _linear_filterbank_by_hand(512, SR, 20)
    power = _frames_power(x[0], 512, 256)
    ref = scipy.fft.dct(np.log(bank @ power + 1e-6), type=2, norm="ortho", axis=0)[:20]
    assert ours.shape == (2, 1, 20, ref.shape[-1])
    np.testing.assert_allclose(ours[0, 0], ref, atol=1e-7)


def test_dct_matrix_is_scipy_dct_ii_ortho():
    v = np.random.default_rng(0).standard_normal(20)
    np.testing.assert_allclose(dct_matrix(20, 13) @ v, scipy.fft.dct(v, norm="ortho")[:13])


@pytest.mark.parametrize(
    "cfg",
    [
        FeatureConfig(),
        FeatureConfig(wavelet="haar", level=14, mode="zero"),
        FeatureConfig(sign_channel=True, level=5, wavelet="db3"),
        FeatureConfig(kind="stft", level=7),
        FeatureConfig(kind="lfcc"),
        FeatureConfig(kind="mfcc", n_fft=1024, n_filters=40, n_coeffs=13),
    ],
)
@pytest.mark.parametrize("n", [16000, 22050])
def test_output_shape_matches_forward(cfg, n):
    fe = FeatureExtractor(cfg)
    out = fe(torch.zeros(2, 1, n))
    assert out.shape == (2, *fe.output_shape(n))
    assert out.dtype == torch.float32


def test_features_stay_float32_under_autocast_and_for_silence():
    x = torch.tensor(_signals(2, 3000), dtype=torch.float32)
    x[1] = 0.0  # digital silence: log(0 + eps) must stay finite
    fe = FeatureExtractor(FeatureConfig(level=5))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fe(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, fe(x))
    np.testing.assert_allclose(out[1].numpy(), np.log(1e-12), rtol=1e-6)
    assert fe(x.half()).dtype == torch.float32


def test_feature_config_coerces_yaml_strings():
    cfg = FeatureConfig.from_dict({"eps": "1e-12", "level": "6", "power": 2})
    assert (cfg.eps, cfg.level, cfg.power) == (1e-12, 6, 2.0)


def test_default_features_shape_for_one_second():
    assert FeatureExtractor().output_shape(SR) == (1, 256, packet_length(SR, "sym5", 8))
    assert FeatureExtractor(FeatureConfig(kind="stft")).output_shape(SR)[1] == 256


def test_feature_config_round_trip_and_validation():
    cfg = FeatureConfig(kind="stft", level=6, eps=1e-8)
    assert FeatureConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.to_dict()["kind"] == "stft"
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.level = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="unknown"):
        FeatureConfig.from_dict({"kind": "packets", "levels": 3})
    for bad in ({"kind": "cqt"}, {"level": 0}, {"wavelet": "foo"}, {"mode": "smooth"}):
        with pytest.raises(ValueError):
            FeatureConfig(**bad)
    with pytest.raises(ValueError, match="sign_channel"):
        FeatureConfig(kind="stft", sign_channel=True)


# ----------------------------------------------------------------------------- normaliser


def test_normalizer_matches_numpy_over_concatenated_batches():
    rng = np.random.default_rng(1)
    # batches of different sizes and per-band scales, so the merge step matters
    sizes = [4, 1, 9, 2]
    batches = [
        rng.normal(3.0, 2.0, (b, 2, 5, 7)) * rng.uniform(0.5, 2, (1, 2, 5, 1)) for b in sizes
    ]
    norm = Normalizer((2, 5, 7))
    for b in batches:
        norm.update(torch.tensor(b, dtype=torch.float32))
    allx = np.concatenate(batches)
    np.testing.assert_allclose(norm.mean.numpy(), allx.mean(axis=(0, 3)), rtol=1e-6)
    np.testing.assert_allclose(norm.std.numpy(), allx.std(axis=(0, 3)), rtol=1e-6)
    assert int(norm.count) == allx.shape[0] * allx.shape[3]
    out = norm(torch.tensor(allx)).numpy()
    np.testing.assert_allclose(out.mean(axis=(0, 3)), 0, atol=1e-6)
    np.testing.assert_allclose(out.std(axis=(0, 3)), 1, atol=1e-5)


def test_normalizer_state_dict_round_trip_and_identity_before_update():
    x = torch.randn(3, 1, 4, 6)
    fresh = Normalizer((1, 4))
    torch.testing.assert_close(fresh(x), x)
    norm = Normalizer((1, 4)).update(x * 5 + 2)
    assert {"mean", "std", "m2", "count"} <= set(norm.state_dict())
    other = Normalizer((1, 4))
    other.load_state_dict(norm.state_dict())
    torch.testing.assert_close(other(x), norm(x))


def test_normalizer_floors_std_of_constant_bands():
    norm = Normalizer((1, 2), min_std=1e-3).update(torch.ones(2, 1, 2, 5))
    np.testing.assert_allclose(norm.std.numpy(), 1e-3)
    assert torch.isfinite(norm(torch.ones(1, 1, 2, 5))).all()


def test_normalizer_rejects_wrong_shape():
    with pytest.raises(ValueError, match="expected features"):
        Normalizer((1, 4)).update(torch.zeros(2, 1, 5, 3))


def test_waveform_feature_is_the_frame_itself():
    x = torch.randn(3, 1000)
    ext = FeatureExtractor(FeatureConfig(kind="waveform"))
    assert ext.output_shape(1000) == (1, 1, 1000)
    assert torch.equal(ext(x), x[:, None, None, :])


def test_filter_banks_are_built_once_and_survive_inference_mode():
    """The per-call numpy->tensor copy is gone, and a bank first built under
    ``torch.inference_mode`` still works with autograd (attribution) later."""
    from gpwave import transforms

    transforms._filters.cache_clear()
    x = torch.randn(2, 512, dtype=torch.float64)
    with torch.inference_mode():
        ref = transforms.wavelet_packets(x, "sym5", 3)
    xg = x.clone().requires_grad_(True)
    out = transforms.wavelet_packets(xg, "sym5", 3)
    out.sum().backward()
    assert xg.grad is not None and torch.equal(out.detach(), ref)
    assert transforms._filters.cache_info().misses == 1
    assert transforms._filters.cache_info().hits >= 1


def test_stft_feature_is_the_float64_log_power_for_float32_frames():
    """The STFT feature of float32 frames equals librosa's float64 STFT log-power.

    A loud tone over very quiet noise puts bins 100+ dB below the peak; a float32 FFT
    gets those bins' power wrong by orders of magnitude (the released STFT model's
    log-odds moved by up to 2e-2), so the feature computes the STFT in float64.
    """
    import librosa

    from gpwave.transforms import FeatureConfig, FeatureExtractor

    sr, n = 22050, 22050
    t = np.arange(n) / sr
    rng = np.random.default_rng(0)
    x = (0.9 * np.sin(2 * np.pi * 440 * t) + 1e-6 * rng.standard_normal(n)).astype(np.float32)
    cfg = FeatureConfig(kind="stft", stft_n_fft=511, stft_hop=220)
    got = FeatureExtractor(cfg)(torch.from_numpy(x)[None])[0, 0].double().numpy()
    n_fft, hop, bins = cfg.stft_size()
    spec = librosa.stft(x.astype(np.float64), n_fft=n_fft, hop_length=hop, window="hann",
                        center=True, pad_mode="reflect")[:bins]  # fmt: skip
    ref = np.log(np.abs(spec) ** 2 + cfg.eps)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4)
