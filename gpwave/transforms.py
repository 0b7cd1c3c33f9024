"""Time-frequency features: wavelet packets, STFT, LFCC/MFCC, log scaling, normalisation.

The wavelet packet transform follows PyWavelets' conventions exactly (filters, boundary
extension, output lengths, Gray-code frequency order), like ptwt, but computes all nodes of
one level in a single strided filter step instead of ptwt's node-by-node dictionary, which
makes deep trees (level 8 to 14) several times faster.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pywt
import torch
from torch import Tensor, nn

from gpwave.constants import (
    SAMPLE_RATE,
    BoundaryMode,
    FeatureKind,
    PacketOrder,
    check_option,
)

#: Deepest packet level supported (level 14 is the study's fingerprint resolution).
MAX_LEVEL = 14
#: Offset inside the log of the WaveFake LFCC/MFCC baselines (torchaudio's ``log_lf``).
CEPSTRAL_LOG_OFFSET = 1e-6


# ----------------------------------------------------------------------------- packets


def _as_wavelet(wavelet: str | pywt.Wavelet) -> pywt.Wavelet:
    """Return a discrete PyWavelets wavelet or raise a ValueError naming it."""
    if isinstance(wavelet, pywt.Wavelet):
        return wavelet
    try:
        return pywt.Wavelet(wavelet)
    except ValueError as err:
        raise ValueError(
            f"wavelet={wavelet!r} is not a discrete PyWavelets wavelet "
            "(see pywt.wavelist(kind='discrete'))"
        ) from err


def _check_level(level: int) -> int:
    """Return ``level`` if it is an int in 1..MAX_LEVEL, else raise a ValueError."""
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)):
        raise ValueError(f"level={level!r} must be an integer in 1..{MAX_LEVEL}")
    if not 1 <= level <= MAX_LEVEL:
        raise ValueError(f"level={level} is outside 1..{MAX_LEVEL}")
    return int(level)


def _extension_index(n: int, left: int, right: int, mode: str, device: torch.device) -> Tensor:
    """Source indices of PyWavelets' boundary extension of a length-``n`` signal.

    Valid for any pad width (also wider than the signal), reproducing ``pywt.pad``:
    ``reflect`` mirrors without repeating the edge (period 2n-2), ``symmetric`` mirrors
    with the edge repeated (period 2n), ``periodic`` wraps, ``constant`` repeats the edge.
    ``zero`` is handled by the caller.
    """
    p = torch.arange(-left, n + right, device=device)
    if mode == "constant" or (mode == "reflect" and n == 1):
        return p.clamp(0, n - 1)
    if mode == "periodic":
        return p.remainder(n)
    period = 2 * n - 2 if mode == "reflect" else 2 * n
    q = p.remainder(period)
    return torch.where(q < n, q, period - q - int(mode == "symmetric"))


def _extend(x: Tensor, left: int, right: int, mode: str) -> Tensor:
    """Extend the last axis of ``x`` by ``left``/``right`` samples as PyWavelets does.

    Uses torch's native padding where it agrees with PyWavelets and falls back to an
    index gather (any pad width) otherwise.
    """
    n = x.shape[-1]
    if mode == "zero":
        return nn.functional.pad(x, (left, right))
    if mode == "constant":
        return nn.functional.pad(x, (left, right), mode="replicate")
    if mode == "reflect" and max(left, right) < n:
        return nn.functional.pad(x, (left, right), mode="reflect")
    if mode == "periodic" and max(left, right) <= n:
        return nn.functional.pad(x, (left, right), mode="circular")
    if mode == "symmetric" and max(left, right) <= n:
        parts = [x[..., :left].flip(-1), x, x[..., n - right :].flip(-1)]
        return torch.cat(parts, dim=-1)
    return x.index_select(-1, _extension_index(n, left, right, mode, x.device))


#: Elements per chunk of the CPU packet step: small enough to stay in cache.
_CPU_CHUNK = 1 << 18


def _analysis_step(x: Tensor, filters: Tensor, mode: str) -> Tensor:
    """One level of the packet tree for all nodes at once.

    Every node is extended at its boundaries and filtered with the low- and high-pass
    filters at stride 2 (one ``conv1d`` over all nodes). On CPU the batch is processed in
    cache-sized chunks, which is several times faster than one large convolution.

    Args:
        x: Coefficients ``(B, M, n)`` of the M nodes of one level, natural order.
        filters: ``(2, 1, F)`` time-reversed low- and high-pass decomposition filters.
        mode: PyWavelets boundary mode.

    Returns:
        ``(B, 2M, n_out)`` children in natural order (node m -> 2m "a", 2m+1 "d"), with
        ``n_out = floor((n + F - 1) / 2)`` as ``pywt.dwt``.
    """
    flen = filters.shape[-1]
    n_batch, n_nodes, n = x.shape
    n_out = (n + flen - 1) // 2
    padded = flen - 2 + 2 * n_out
    step = n_batch if x.device.type != "cpu" else _CPU_CHUNK // (n_nodes * padded)
    step = max(1, step)
    outs = [x.new_empty(0, 2 * n_nodes, n_out)] if n_batch == 0 else []
    for i in range(0, n_batch, step):
        xp = _extend(x[i : i + step], flen - 2, 2 * n_out - n, mode)
        out = nn.functional.conv1d(xp.reshape(-1, 1, padded), filters, stride=2)
        outs.append(out.view(-1, 2 * n_nodes, n_out))
    return outs[0] if len(outs) == 1 else torch.cat(outs)


def _gray_inverse(level: int) -> np.ndarray:
    """Frequency position of each natural-order node (inverse Gray code)."""
    nat = np.arange(2**level)
    pos = nat.copy()
    shift = nat >> 1
    while shift.any():
        pos ^= shift
        shift >>= 1
    return pos


def freq_permutation(level: int) -> np.ndarray:
    """Natural-order node index of each frequency-ordered packet (the Gray code).

    ``coeffs_natural[:, freq_permutation(level)]`` is in frequency order, matching
    ``pywt.WaveletPacket.get_level(level, order="freq")``.

    Args:
        level: Packet tree depth.

    Returns:
        Integer array of length ``2**level``.
    """
    k = np.arange(2 ** _check_level(level))
    return k ^ (k >> 1)


def _decomposition_filters(wavelet: pywt.Wavelet, x: Tensor) -> Tensor:
    """``(2, 1, F)`` reversed dec_lo / dec_hi filters (conv1d weights) like x."""
    return _filters(tuple(wavelet.dec_lo), tuple(wavelet.dec_hi), x.dtype, x.device)


@functools.lru_cache(maxsize=64)
def _filters(lo: tuple, hi: tuple, dtype: torch.dtype, device: torch.device) -> Tensor:
    """The filter bank on ``device``, built once per wavelet, dtype and device.

    Feature calls run on every training step; building the bank from numpy each time
    was a blocking host-to-device copy per step on a GPU.
    """
    bank = np.stack([lo[::-1], hi[::-1]])[:, None, :]
    with torch.inference_mode(False):  # a cached inference tensor could not enter autograd
        return torch.as_tensor(bank.copy(), dtype=dtype, device=device)


@functools.lru_cache(maxsize=64)
def _freq_index(level: int, device: torch.device) -> Tensor:
    """:func:`freq_permutation` as an index tensor on ``device`` (built once)."""
    with torch.inference_mode(False):
        return torch.as_tensor(freq_permutation(level), device=device)


def _as_batch(x: Tensor) -> Tensor:
    """Return waveforms as ``(B, N)``; accepts ``(B, N)`` or ``(B, 1, N)`` float tensors."""
    if not isinstance(x, Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(x).__name__}")
    if x.ndim == 3 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 2:
        raise ValueError(f"expected waveforms of shape (B, N) or (B, 1, N), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"expected a floating-point tensor, got {x.dtype}")
    return x


def wavelet_packets(
    x: Tensor,
    wavelet: str | pywt.Wavelet,
    level: int,
    mode: BoundaryMode = "reflect",
    order: PacketOrder = "freq",
) -> Tensor:
    """Full wavelet packet decomposition at one level, all nodes as one tensor.

    Equal, node by node, to ``pywt.WaveletPacket(x, wavelet, mode, maxlevel=level)``
    ``.get_level(level, order)`` (and to ptwt's ``WaveletPacket``), but every level is one
    strided filter step over all nodes at once, so it is much faster than node-by-node
    extraction. Runs on the device and in the dtype of ``x`` and is differentiable.
    Extensions wider than a node are handled as ``pywt.pad`` does; where PyWavelets
    refuses (``reflect`` of a single-sample node) the sample is repeated instead.

    Args:
        x: Waveforms ``(B, N)`` or ``(B, 1, N)``, float32 or float64, CPU or CUDA.
        wavelet: A discrete PyWavelets wavelet or its name ("haar", "db2", "sym5", ...).
        level: Depth of the packet tree, 1 to 14.
        mode: Boundary extension, as in PyWavelets: reflect, zero, constant, periodic,
            symmetric.
        order: ``freq`` (ascending frequency, Gray code) or ``natural`` (tree order).

    Returns:
        Coefficients ``(B, 2**level, T)``; T is the node length PyWavelets gives.

    Raises:
        ValueError: For a level outside 1..14, an unknown wavelet, mode or order, or a
            badly shaped / non-float input.
    """
    level = _check_level(level)
    check_option(mode, BoundaryMode, "mode")
    check_option(order, PacketOrder, "order")
    w = _as_wavelet(wavelet)
    x = _as_batch(x)
    filters = _decomposition_filters(w, x)
    coeffs = x.unsqueeze(1)
    for _ in range(level):
        coeffs = _analysis_step(coeffs, filters, mode)
    if order == "freq":
        coeffs = coeffs.index_select(1, _freq_index(level, x.device))
    return coeffs


def packet_length(n_samples: int, wavelet: str | pywt.Wavelet, level: int) -> int:
    """Number of coefficients per packet at ``level`` for a signal of ``n_samples``.

    Args:
        n_samples: Signal length.
        wavelet: Wavelet or its name.
        level: Packet tree depth, 1 to 14.

    Returns:
        T in the ``(B, 2**level, T)`` output of :func:`wavelet_packets`.
    """
    flen = _as_wavelet(wavelet).dec_len
    n = int(n_samples)
    for _ in range(_check_level(level)):
        n = (n + flen - 1) // 2
    return n


def packet_frequencies(
    level: int, sample_rate: float = SAMPLE_RATE, order: PacketOrder = "freq"
) -> np.ndarray:
    """Centre frequency in Hz of each packet of a level, in the given order.

    Level ``l`` splits 0..sample_rate/2 into ``2**l`` equal bands; in frequency order
    packet k covers ``[k, k + 1] * sample_rate / 2**(l + 1)``, so its centre is
    ``(k + 0.5) * sample_rate / 2**(l + 1)``. In natural order node n sits at frequency
    position ``inverse_gray(n)``.

    Args:
        level: Packet tree depth, 1 to 14.
        sample_rate: Sample rate in Hz.
        order: ``freq`` or ``natural``.

    Returns:
        float64 array of length ``2**level``.
    """
    level = _check_level(level)
    check_option(order, PacketOrder, "order")
    position = np.arange(2**level) if order == "freq" else _gray_inverse(level)
    return (position + 0.5) * sample_rate / 2 ** (level + 1)


def stft_frequencies(
    n_bins: int, sample_rate: float = SAMPLE_RATE, n_fft: int | None = None
) -> np.ndarray:
    """Frequency in Hz of each bin of the ``stft`` feature with ``n_bins`` bins.

    By default the ``stft`` feature uses ``n_fft = 2 * n_bins`` and keeps bins
    0..n_bins-1 (the Nyquist bin is dropped); with an explicit ``stft_n_fft`` (the
    reference's 511) all ``n_fft // 2 + 1`` bins are kept. Bin k sits at
    ``k * sample_rate / n_fft``.

    Args:
        n_bins: Number of frequency bins.
        sample_rate: Sample rate in Hz.
        n_fft: FFT size (default ``2 * n_bins``).

    Returns:
        float64 array of length ``n_bins``.
    """
    return np.arange(n_bins) * sample_rate / (n_fft or 2 * n_bins)


# ----------------------------------------------------------------------------- features


@dataclass(frozen=True)
class FeatureConfig:
    """What :class:`FeatureExtractor` computes.

    Attributes:
        kind: ``packets``, ``stft``, ``lfcc``, ``mfcc`` or ``waveform`` (the frame
            itself, ``(B, 1, 1, N)``: for a model that computes its own features).
        wavelet: Wavelet of the packet transform.
        level: Packet level; also sets the STFT size (``2**level`` bins).
        mode: Boundary mode of the packet transform.
        order: Packet order, ``freq`` or ``natural``.
        power: Packets use ``|c|**power``.
        eps: Added before the log (packets and STFT).
        log: Log-scale packets / STFT power.
        sign_channel: Packets only: add ``sign(c)`` as a second channel.
        sample_rate: Sample rate in Hz (filterbanks of LFCC/MFCC).
        n_fft: FFT size of LFCC/MFCC (WaveFake: 512; hop n_fft // 2).
        n_filters: Triangular filters of LFCC/MFCC (WaveFake: 20).
        n_coeffs: Cepstral coefficients kept (WaveFake: 20).
        stft_n_fft: STFT size of the ``stft`` feature (window length = n_fft, all
            ``n_fft // 2 + 1`` bins kept); 0 derives it from ``level``
            (:func:`stft_params`). The paper's released STFT model uses 511.
        stft_hop: STFT hop of the ``stft`` feature; 0 derives it from ``level``
            (the paper's released STFT model uses 220).
    """

    kind: FeatureKind = "packets"
    wavelet: str = "sym5"
    level: int = 8
    mode: BoundaryMode = "reflect"
    order: PacketOrder = "freq"
    power: float = 1.0
    eps: float = 1e-12
    log: bool = True
    sign_channel: bool = False
    sample_rate: int = SAMPLE_RATE
    n_fft: int = 512
    n_filters: int = 20
    n_coeffs: int = 20
    stft_n_fft: int = 0
    stft_hop: int = 0

    def __post_init__(self) -> None:
        """Coerce numbers (YAML reads ``1e-12`` as a string), validate every option."""
        for name, kind in (("level", int), ("power", float), ("eps", float)):
            object.__setattr__(self, name, kind(getattr(self, name)))
        for name in ("sample_rate", "n_fft", "n_filters", "n_coeffs", "stft_n_fft", "stft_hop"):
            object.__setattr__(self, name, int(getattr(self, name)))
        check_option(self.kind, FeatureKind, "kind")
        check_option(self.mode, BoundaryMode, "mode")
        check_option(self.order, PacketOrder, "order")
        _check_level(self.level)
        _as_wavelet(self.wavelet)
        if self.sign_channel and self.kind != "packets":
            raise ValueError(f"sign_channel is only defined for packets, not {self.kind!r}")
        if self.n_coeffs > self.n_filters:
            raise ValueError(f"n_coeffs={self.n_coeffs} exceeds n_filters={self.n_filters}")
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate={self.sample_rate} must be a positive number of Hz")
        if self.power <= 0 or self.eps < 0 or self.n_fft < 2:
            raise ValueError("power must be > 0, eps >= 0 and n_fft >= 2")
        if self.stft_n_fft < 0 or self.stft_hop < 0 or self.stft_n_fft == 1:
            raise ValueError("stft_n_fft must be 0 or >= 2 and stft_hop >= 0 (0: from level)")

    def stft_size(self) -> tuple[int, int, int]:
        """FFT size, hop and number of kept bins of the ``stft`` feature.

        Returns:
            ``(n_fft, hop, n_bins)``: :func:`stft_params` of ``level`` with ``2**level``
            bins, unless ``stft_n_fft`` / ``stft_hop`` are set (then all one-sided bins).
        """
        n_fft, hop = stft_params(self.level)
        bins = 2**self.level
        if self.stft_n_fft:
            n_fft, bins = self.stft_n_fft, self.stft_n_fft // 2 + 1
        return n_fft, self.stft_hop or hop, bins

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (for YAML, JSON and checkpoints).

        Returns:
            ``{field: value}``.
        """
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureConfig:
        """Rebuild a config from :meth:`to_dict` output.

        Args:
            d: Field values; missing fields take their defaults.

        Returns:
            The config.

        Raises:
            ValueError: For keys that are not fields.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown FeatureConfig keys {unknown}; known: {sorted(names)}")
        return cls(**d)


def _hz_to_mel_htk(f: np.ndarray) -> np.ndarray:
    """HTK mel scale (torchaudio's default, WaveFake's MFCC)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz_htk(m: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_hz_to_mel_htk`."""
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def triangular_filterbank(
    n_fft: int, sample_rate: float, n_filters: int, scale: str = "linear"
) -> np.ndarray:
    """Triangular filters on the rfft bins, equally spaced on a linear or HTK mel scale.

    Centres at ``n_filters + 2`` equally spaced points from 0 to sample_rate/2 (mel
    points mapped back to Hz for ``mel``); unnormalised peaks of 1, as torchaudio's
    ``melscale_fbanks(norm=None)`` and WaveFake's linear LFCC filterbank.

    Args:
        n_fft: FFT size; the filters act on ``n_fft // 2 + 1`` bins.
        sample_rate: Sample rate in Hz.
        n_filters: Number of filters.
        scale: ``linear`` (LFCC) or ``mel`` (MFCC, HTK formula).

    Returns:
        ``(n_filters, n_fft // 2 + 1)`` float64 weights.
    """
    fft_freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    if scale == "linear":
        edges = np.linspace(0.0, sample_rate / 2, n_filters + 2)
    elif scale == "mel":
        edges = _mel_to_hz_htk(np.linspace(0.0, _hz_to_mel_htk(sample_rate / 2), n_filters + 2))
    else:
        raise ValueError(f"scale={scale!r} is not one of 'linear', 'mel'")
    diff = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / diff[:-1, None]
    upper = ramps[2:] / diff[1:, None]
    return np.maximum(0.0, np.minimum(lower, upper))


def dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II as a matrix, truncated to its first ``n_out`` rows.

    ``D @ x`` equals ``scipy.fft.dct(x, type=2, norm="ortho")[:n_out]``.

    Args:
        n_in: Input length (number of filters).
        n_out: Coefficients kept.

    Returns:
        ``(n_out, n_in)`` float64 matrix.
    """
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    d = np.cos(np.pi / n_in * (n + 0.5) * k) * np.sqrt(2.0 / n_in)
    d[0] /= np.sqrt(2.0)
    return d


def stft_params(level: int) -> tuple[int, int]:
    """FFT size and hop of the ``stft`` feature for a packet level.

    ``n_fft = 2**(level + 1)`` gives ``2**level + 1`` one-sided bins; the Nyquist bin is
    dropped so F equals the ``2**level`` packets. The hop ``2**level`` makes T close to the
    packets' T (a level-l packet coefficient also advances 2**l samples); with centred
    frames ``T = 1 + N // 2**level`` (87 vs 95 packets for 1 s at 22.05 kHz, level 8).

    Args:
        level: Packet level.

    Returns:
        ``(n_fft, hop)``.
    """
    return 2 ** (_check_level(level) + 1), 2**level


class FeatureExtractor(nn.Module):
    """Waveforms ``(B, N)`` or ``(B, 1, N)`` -> features ``(B, C, F, T)``.

    Kinds:
        * ``packets``: ``log(|c|**power + eps)`` (or ``|c|**power`` without log) of the
          level-``level`` packets, F = 2**level; with ``sign_channel`` C = 2 (log-magnitude,
          sign of c).
        * ``stft``: ``log(|X|**2 + eps)`` with a periodic Hann window as long as n_fft,
          n_fft and hop from :func:`stft_params` (F = 2**level) or from ``stft_n_fft`` /
          ``stft_hop`` (F = n_fft // 2 + 1), centred reflect-padded frames.
        * ``waveform``: the frame unchanged, as ``(B, 1, 1, N)`` (C = F = 1, T = N), for
          models that compute their own features from it.
        * ``lfcc`` / ``mfcc``: WaveFake's baselines (torchaudio LFCC/MFCC with
          ``log_lf``/``log_mels``): power spectrum (Hann, n_fft, hop n_fft // 2, centred,
          reflect padding), 20 linear / HTK-mel triangular filters, ``log(. + 1e-6)``,
          orthonormal DCT-II; F = n_coeffs.

    Args:
        cfg: The feature configuration (default: sym5 level-8 packets).
    """

    def __init__(self, cfg: FeatureConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or FeatureConfig()
        c = self.cfg
        if c.kind in ("lfcc", "mfcc"):
            scale = "linear" if c.kind == "lfcc" else "mel"
            fb = triangular_filterbank(c.n_fft, c.sample_rate, c.n_filters, scale)
            dct = dct_matrix(c.n_filters, c.n_coeffs)
            self.register_buffer("filterbank", torch.as_tensor(fb.T.copy()), persistent=False)
            self.register_buffer("dct", torch.as_tensor(dct.T.copy()), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """Compute the features.

        Args:
            x: Waveforms ``(B, N)`` or ``(B, 1, N)``.

        Returns:
            ``(B, C, F, T)`` features on the device of ``x``, float64 for float64 input,
            else float32 (also under autocast).
        """
        x = _as_batch(x)
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        # Features are computed in float32/64 even under autocast: in half precision
        # eps=1e-12 would vanish and log(0) of silent frames become -inf.
        with torch.autocast(x.device.type, enabled=False):
            if self.cfg.kind == "waveform":
                return x[:, None, None, :]
            if self.cfg.kind == "packets":
                return self._packets(x)
            if self.cfg.kind == "stft":
                return self._stft(x)
            return self._cepstrum(x)

    def _packets(self, x: Tensor) -> Tensor:
        c = self.cfg
        coeffs = wavelet_packets(x, c.wavelet, c.level, c.mode, c.order)
        mag = coeffs.abs() ** c.power if c.power != 1 else coeffs.abs()
        feats = torch.log(mag + c.eps) if c.log else mag
        if c.sign_channel:
            return torch.stack([feats, torch.sign(coeffs)], dim=1)
        return feats.unsqueeze(1)

    def _power_spectrogram(self, x: Tensor, n_fft: int, hop: int) -> Tensor:
        window = torch.hann_window(n_fft, dtype=x.dtype, device=x.device)
        spec = torch.stft(
            x, n_fft, hop, window=window, center=True, pad_mode="reflect", return_complex=True
        )
        return spec.real**2 + spec.imag**2  # (B, n_fft // 2 + 1, T)

    def _stft(self, x: Tensor) -> Tensor:
        c = self.cfg
        n_fft, hop, bins = c.stft_size()
        # float64: bins 100 dB below a frame's peak lose all their digits in a float32 FFT
        power = self._power_spectrogram(x.double(), n_fft, hop)[:, :bins].to(x.dtype)
        feats = torch.log(power + c.eps) if c.log else power
        return feats.unsqueeze(1)

    def _cepstrum(self, x: Tensor) -> Tensor:
        c = self.cfg
        power = self._power_spectrogram(x, c.n_fft, c.n_fft // 2)
        bands = power.transpose(1, 2) @ self.filterbank.to(x.dtype)  # (B, T, n_filters)
        ceps = torch.log(bands + CEPSTRAL_LOG_OFFSET) @ self.dct.to(x.dtype)  # (B, T, n_coeffs)
        return ceps.transpose(1, 2).unsqueeze(1)

    def output_shape(self, n_samples: int) -> tuple[int, int, int]:
        """Feature shape ``(C, F, T)`` for waveforms of ``n_samples``.

        Args:
            n_samples: Waveform length N.

        Returns:
            ``(C, F, T)``.
        """
        c = self.cfg
        if c.kind == "waveform":
            return 1, 1, n_samples
        if c.kind == "packets":
            channels = 2 if c.sign_channel else 1
            return channels, 2**c.level, packet_length(n_samples, c.wavelet, c.level)
        if c.kind == "stft":
            _, hop, bins = c.stft_size()
            return 1, bins, 1 + n_samples // hop
        return 1, c.n_coeffs, 1 + n_samples // (c.n_fft // 2)

    def extra_repr(self) -> str:
        """Show the configuration in ``print(module)``."""
        return ", ".join(f"{k}={v!r}" for k, v in self.cfg.to_dict().items())


# ----------------------------------------------------------------------------- normaliser


class Normalizer(nn.Module):
    """Per-band standardisation with streamed mean/std (Chan et al.'s parallel Welford).

    Statistics are per (channel, frequency) band, pooled over batch items and time steps.
    ``update`` folds in a batch; ``forward`` returns ``(x - mean) / std``. Before any
    update it is the identity. ``mean``, ``std``, ``m2`` and ``count`` are buffers, so they
    travel in the model's ``state_dict``.

    Args:
        shape: ``(C, F)`` or a feature shape ``(C, F, T)`` (T is ignored).
        min_std: Floor of the std, so silent bands do not blow up.
    """

    def __init__(self, shape: tuple[int, ...], min_std: float = 1e-6) -> None:
        super().__init__()
        if len(shape) not in (2, 3):
            raise ValueError(f"shape must be (C, F) or (C, F, T), got {tuple(shape)}")
        bands = tuple(int(s) for s in shape[:2])
        self.min_std = float(min_std)
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(bands, dtype=torch.float64))
        self.register_buffer("m2", torch.zeros(bands, dtype=torch.float64))
        self.register_buffer("std", torch.ones(bands, dtype=torch.float64))

    @torch.no_grad()
    def update(self, batch: Tensor) -> Normalizer:
        """Fold a batch of features ``(B, C, F, T)`` into the running statistics.

        Args:
            batch: Features of the same (C, F) as the normaliser.

        Returns:
            ``self``, with ``std`` already refreshed.
        """
        if batch.ndim != 4 or tuple(batch.shape[1:3]) != tuple(self.mean.shape):
            raise ValueError(
                f"expected features (B, {self.mean.shape[0]}, {self.mean.shape[1]}, T), "
                f"got {tuple(batch.shape)}"
            )
        x = batch.detach().to(device=self.mean.device, dtype=torch.float64)
        n_b = x.shape[0] * x.shape[3]
        if n_b == 0:
            return self
        mean_b = x.mean(dim=(0, 3))
        m2_b = ((x - mean_b[None, :, :, None]) ** 2).sum(dim=(0, 3))
        n_a = self.count.clone()
        total = n_a + n_b
        delta = mean_b - self.mean
        self.mean += delta * (n_b / total)
        self.m2 += m2_b + delta**2 * (n_a * n_b / total)
        self.count.fill_(total)
        return self.finalize()

    @torch.no_grad()
    def finalize(self) -> Normalizer:
        """Recompute ``std`` (population std, floored at ``min_std``) from ``m2``/``count``.

        Returns:
            ``self``.
        """
        if self.count > 0:
            self.std.copy_((self.m2 / self.count).sqrt().clamp_min(self.min_std))
        return self

    def forward(self, x: Tensor) -> Tensor:
        """Standardise features ``(B, C, F, T)`` band by band.

        Args:
            x: Features.

        Returns:
            ``(x - mean) / std`` in the dtype of ``x``.
        """
        mean = self.mean.to(x.dtype)[None, :, :, None]
        std = self.std.to(x.dtype)[None, :, :, None]
        return (x - mean) / std
