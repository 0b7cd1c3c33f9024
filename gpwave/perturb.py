"""Perturbations of waveforms for robustness sweeps and augmentation.

Every function takes float32 audio, one signal ``(n,)`` or a batch ``(b, n)`` of
signals, at sample rate ``sr`` and returns float32 audio of the same shape; only
:func:`shift` returns fewer samples. Nothing is clipped: a gain of +12 dB may leave
``[-1, 1]``. Random perturbations are deterministic given ``seed``.
:func:`apply` dispatches by name and :data:`PERTURBATIONS` gives each kind's unit and
the strength grid of a robustness sweep.

Codecs run in memory through libsndfile. Written and tested against soundfile 0.14.0
with libsndfile 1.2.2 (``soundfile.__libsndfile_version__``), which writes and reads
MP3 (subtype ``MPEG_LAYER_III``, LAME/mpg123) and OGG (subtypes ``VORBIS`` and
``OPUS``); ``soundfile.available_subtypes("MP3")`` and ``("OGG")`` list them. The
settings map onto libsndfile's single ``compression_level`` in ``[0, 1]`` exactly as
libsndfile's sources do:

- MP3, constant bit rate: ``kbit/s = top - level * (top - bottom)``, truncated, with
  ``(bottom, top)`` = (32, 320) for MPEG-1 (32 kHz and up), (8, 160) for MPEG-2
  (16-24 kHz) and (8, 64) for MPEG-2.5 (below 16 kHz). :func:`encode` accepts only the
  bit rates of the MPEG version's table, so the nominal rate is the frame rate LAME
  writes. Rates LAME cannot write are resampled to the next supported one and back.
- Opus: ``bit/s = (1 - level) * 250000 + 6000`` per channel, variable bit rate (the
  libopus default), so the achieved rate only approximates the target. Opus encodes
  8, 12, 16, 24 or 48 kHz; 22.05 kHz goes through 24 kHz and back with soxr.
- Vorbis: quality ``1 - level`` (libvorbis' ``-q`` scale divided by 10), variable bit
  rate; the setting is that quality, not a bit rate.

:func:`encoded_kbps` measures the achieved rate from the encoded byte count (container
headers included). Mostly libsndfile removes the codec delay itself, from the stream's
metadata (LAME's gapless header, Opus pre-skip, Vorbis granule positions). LAME writes
no gapless header into frames too small to hold it (here MP3 at 48 kbit/s and below at
22.05 kHz), and then mpg123 returns the delay too (measured: 1105 samples, LAME's 576
plus mpg123's 529) and the end padding.
So :func:`codec_delay` measures the delay of each setting once, by cross-correlating a
noise probe with its round trip, and :func:`codec_round_trip` drops it and trims or
pads to the input's length: the output is aligned (lag 0, measured in the tests).
Opus at 16 kbit/s and below distorts the phase enough to move a broadband signal's
cross-correlation peak by a few samples; there is no delay left to remove there.
Measured here too: LAME/mpg123 return MPEG-2 and -2.5 streams (below 32 kHz) 0.45 dB
quieter (a factor 0.95 at every bit rate, level and frequency); the round trip keeps
that, as it keeps the codec's band limit.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

from gpwave.constants import Codec, NoiseColor, PerturbationKind, check_option

#: Sample rates LAME can write (MPEG-1, -2 and -2.5).
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
#: Sample rates Opus encodes.
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
#: Layer III bit rates (kbit/s) of MPEG-1 and of MPEG-2/2.5 (libsndfile caps 2.5 at 64).
MP3_KBPS_MPEG1 = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
MP3_KBPS_MPEG2 = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
#: Width of the low-pass transition band, as a fraction of the cutoff.
LOWPASS_TRANSITION = 0.1


def _audio(x: np.ndarray) -> np.ndarray:
    """Return ``x`` as float32 ``(n,)`` or ``(b, n)`` audio, or raise a ValueError.

    Every perturbation starts here, so none of them passes NaN/inf on, turns it into
    audio (Opus, Vorbis) or hands it to LAME (which aborts the interpreter).
    """
    with np.errstate(over="ignore"):
        x = np.asarray(x, dtype=np.float32)
    if x.ndim not in (1, 2) or x.shape[-1] == 0:
        raise ValueError(f"audio must have shape (n,) or (b, n) with n > 0, got {x.shape}")
    if not np.isfinite(x).all():
        bad = int(np.size(x) - np.isfinite(x).sum())
        raise ValueError(f"audio holds {bad} NaN or infinite sample(s); perturb finite audio only")
    return x


def _finite(value: float, name: str) -> float:
    """Return ``value`` as a float if it is a finite number, else raise a ValueError."""
    if not np.isfinite(value):
        raise ValueError(f"{name}={value!r} must be a finite number")
    return float(value)


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad the last axis of ``y`` to ``n`` samples, as float32."""
    pad = [(0, 0)] * (y.ndim - 1) + [(0, max(0, n - y.shape[-1]))]
    return np.pad(y[..., :n], pad).astype(np.float32)


def _resample(x: np.ndarray, sr: int, rate: int) -> np.ndarray:
    """Resample ``(n,)`` or ``(b, n)`` audio from ``sr`` to ``rate`` with soxr (HQ)."""
    if rate == sr:
        return x
    return soxr.resample(np.ascontiguousarray(x.T), sr, rate, quality="HQ").T


def gain(x: np.ndarray, db: float) -> np.ndarray:
    """Scale audio by ``db`` decibels (no clipping).

    Args:
        x: Audio, ``(n,)`` or ``(b, n)``.
        db: Gain in dB; the RMS changes by exactly this much.

    Returns:
        ``x * 10 ** (db / 20)`` as float32.

    Raises:
        ValueError: If ``db`` is not finite, or so large that samples overflow float32.
    """
    x, db = _audio(x), _finite(db, "db")
    with np.errstate(over="ignore"):
        y = (x * np.power(10.0, db / 20)).astype(np.float32)
    if not np.isfinite(y).all():
        raise ValueError(f"db={db:g}: the gain overflows float32 samples (|x| > 3.4e38)")
    return y


def _noise(shape: tuple[int, ...], color: NoiseColor, seed: int) -> np.ndarray:
    """Gaussian noise of ``color``; pink noise has power ~ 1/f (rfft-domain shaping)."""
    white = np.random.default_rng(seed).standard_normal(shape)
    if color == "white":
        return white
    spec = np.fft.rfft(white, axis=-1)
    spec /= np.sqrt(np.maximum(np.arange(spec.shape[-1]), 1))
    spec[..., 0] = 0
    return np.fft.irfft(spec, n=shape[-1], axis=-1)


def add_noise(
    x: np.ndarray, snr_db: float, color: NoiseColor = "white", seed: int = 0
) -> np.ndarray:
    """Add white or pink Gaussian noise at a signal-to-noise ratio.

    The noise is scaled per signal with its realised power, so each row's SNR, measured
    as ``10 log10(sum(x**2) / sum(noise**2))``, is ``snr_db`` exactly; a silent row gets
    no noise (its SNR is undefined).


    Args:
        x: Audio, ``(n,)`` or ``(b, n)``.
        snr_db: Target SNR in dB.
        color: ``white`` (flat power) or ``pink`` (power ~ 1/f, -10 dB/decade).
        seed: Seed of the noise.

    Returns:
        ``x`` plus noise, float32.

    Raises:
        ValueError: If ``snr_db`` is not finite or ``color`` is unknown.
    """
    x = _audio(x)
    snr = _finite(snr_db, "snr_db")
    noise = _noise(x.shape, check_option(color, NoiseColor, "color"), seed)
    p_x = np.mean(np.square(x, dtype=np.float64), axis=-1, keepdims=True)
    p_n = np.maximum(np.mean(noise**2, axis=-1, keepdims=True), np.finfo(float).tiny)
    return (x + noise * np.sqrt(p_x / (p_n * 10 ** (snr / 10)))).astype(np.float32)


def resample(x: np.ndarray, sr: int, rate: int) -> np.ndarray:
    """Resample to ``rate`` and back to ``sr`` (soxr HQ, linear phase, no delay).

    A round trip through a lower rate removes everything above ``rate / 2``.


    Args:
        x: Audio, ``(n,)`` or ``(b, n)``.
        sr: Sample rate of ``x`` in Hz.
        rate: Intermediate sample rate in Hz, e.g. 16000 or 8000.

    Returns:
        The round-tripped audio, float32, with ``x``'s shape.

    Raises:
        ValueError: If ``rate`` is not a positive number.
    """
    x = _audio(x)
    if not _finite(rate, "rate") > 0:
        raise ValueError(f"rate={rate!r} must be positive")
    return _fit(_resample(_resample(x, sr, rate), rate, sr), x.shape[-1])


def shift(x: np.ndarray, sr: int, seconds: float) -> np.ndarray:
    """Move the 1 s frame grid by dropping the first ``seconds`` of the audio.

    Dropping a prefix (not rotating) keeps the audio intact: a circular shift would
    splice the end onto the start, an artefact no recording has and a detector may
    react to. The result is shorter by ``round(seconds * sr)`` samples, so frames cut
    from it start ``seconds`` later in the original.


    Args:
        x: Audio, ``(n,)`` or ``(b, n)``.
        sr: Sample rate of ``x`` in Hz.
        seconds: Length of the dropped prefix.

    Returns:
        ``x[..., round(seconds * sr):]``, float32.

    Raises:
        ValueError: If the prefix is negative or not shorter than the audio.
    """
    x = _audio(x)
    k = round(_finite(seconds, "seconds") * sr)
    if not 0 <= k < x.shape[-1]:
        raise ValueError(f"seconds={seconds} drops {k} of {x.shape[-1]} samples")
    return x[..., k:].copy()


def lowpass(x: np.ndarray, sr: int, cutoff: float) -> np.ndarray:
    """Zero-phase low-pass filter: an FFT-domain mask with a raised-cosine edge.

    The gain is 1 below ``cutoff * (1 - LOWPASS_TRANSITION / 2)``, 0 above
    ``cutoff * (1 + LOWPASS_TRANSITION / 2)`` and 1/2 (-6 dB, like a ``filtfilt``
    Butterworth) at ``cutoff``. The signal is extended at both ends by odd reflection
    (as ``scipy.signal.filtfilt`` pads) before the FFT, so that the filter does not wrap
    the end onto the start.


    Args:
        x: Audio, ``(n,)`` or ``(b, n)``.
        sr: Sample rate of ``x`` in Hz.
        cutoff: The -6 dB frequency in Hz, below ``sr / 2``.

    Returns:
        The filtered audio, float32, with ``x``'s shape.

    Raises:
        ValueError: If ``cutoff`` is not in ``(0, sr / 2)``.
    """
    x = _audio(x)
    if not 0 < _finite(cutoff, "cutoff") < sr / 2:
        raise ValueError(f"cutoff={cutoff} Hz must lie between 0 and Nyquist ({sr / 2} Hz)")
    width = LOWPASS_TRANSITION * cutoff
    n, pad = x.shape[-1], int(np.ceil(4 * sr / width))  # 4 kernel widths on the left
    size = 1 << (n + 2 * pad - 1).bit_length()  # a fast FFT length, the rest on the right
    edges = [(0, 0)] * (x.ndim - 1) + [(pad, size - n - pad)]
    xp = np.pad(x, edges, mode="reflect", reflect_type="odd")
    freqs = np.fft.rfftfreq(size, 1 / sr)
    edge = np.clip((cutoff + width / 2 - freqs) / width, 0, 1)
    mask = 0.5 - 0.5 * np.cos(np.pi * edge)
    y = np.fft.irfft(np.fft.rfft(xp, axis=-1) * mask, size, axis=-1)
    return y[..., pad : pad + n].astype(np.float32)


# ------------------------------------------------------------------------------ codecs


def _mp3_level(kbps: float, rate: int) -> float:
    """The libsndfile compression level of a constant MP3 bit rate at ``rate``."""
    allowed = MP3_KBPS_MPEG1 if rate >= 32000 else MP3_KBPS_MPEG2
    allowed = tuple(k for k in allowed if rate >= 16000 or k <= 64)
    if kbps not in allowed:
        raise ValueError(f"mp3 at {rate} Hz takes kbit/s in {allowed}, not {kbps!r}")
    bottom, top = allowed[0], allowed[-1]
    # libsndfile truncates top - level * (top - bottom) to an int: aim half a kbit/s up.
    return min(1.0, max(0.0, (top - kbps - 0.5) / (top - bottom)))


def _opus_level(kbps: float, rate: int) -> float:
    """The libsndfile compression level of an Opus target bit rate (one channel)."""
    if not 6 <= _finite(kbps, "kbps") <= 256:
        raise ValueError(f"ogg-opus takes 6 to 256 kbit/s per channel, not {kbps!r}")
    return 1 - (kbps * 1000 - 6000) / 250000


def _vorbis_level(quality: float, rate: int) -> float:
    """The libsndfile compression level of a Vorbis quality in [0, 1]."""
    if not 0 <= _finite(quality, "quality") <= 1:
        raise ValueError(f"ogg-vorbis takes a quality in [0, 1], not {quality!r}")
    return 1 - quality


@dataclass(frozen=True)
class _CodecSpec:
    """How libsndfile writes one codec: container, subtype, rates, setting -> level."""

    format: str
    subtype: str
    rates: tuple[int, ...] | None
    level: Callable[[float, int], float]


_CODECS: dict[str, _CodecSpec] = {
    "mp3": _CodecSpec("MP3", "MPEG_LAYER_III", MP3_RATES, _mp3_level),
    "ogg-opus": _CodecSpec("OGG", "OPUS", OPUS_RATES, _opus_level),
    "ogg-vorbis": _CodecSpec("OGG", "VORBIS", None, _vorbis_level),
}


def _codec_rate(spec: _CodecSpec, sr: int) -> int:
    """``sr`` if the codec encodes it, else the next higher rate it does (or its top)."""
    if spec.rates is None or sr in spec.rates:
        return sr
    return min((r for r in spec.rates if r > sr), default=spec.rates[-1])


def encode(x: np.ndarray, sr: int, codec: Codec, setting: float) -> bytes:
    """Encode one signal with a lossy codec, in memory.

    Args:
        x: One signal, ``(n,)``.
        sr: Sample rate of ``x`` in Hz; resampled to one the codec takes if needed.
        codec: ``mp3``, ``ogg-opus`` or ``ogg-vorbis``.
        setting: kbit/s for ``mp3`` (constant; a bit rate of the MPEG version's table)
            and ``ogg-opus`` (variable, target), quality in ``[0, 1]`` for ``ogg-vorbis``.

    Returns:
        The encoded file's bytes.

    Raises:
        ValueError: For an unknown codec, a setting out of range, batched input, or a
            libsndfile that cannot write the codec.
    """
    spec = _CODECS[check_option(codec, Codec, "codec")]
    x = _audio(x)
    if x.ndim != 1:
        raise ValueError(f"encode takes one signal (n,), got shape {x.shape}")
    if spec.subtype not in sf.available_subtypes(spec.format):
        raise ValueError(f"libsndfile {sf.__libsndfile_version__} cannot write {codec}")
    rate = _codec_rate(spec, sr)
    level = spec.level(setting, rate)
    buf = io.BytesIO()
    mode = "CONSTANT" if codec == "mp3" else None
    data = _resample(x, sr, rate)
    sf.write(
        buf,
        data,
        rate,
        spec.subtype,
        format=spec.format,
        compression_level=level,
        bitrate_mode=mode,
    )
    return buf.getvalue()


def encoded_kbps(x: np.ndarray, sr: int, codec: Codec, setting: float) -> float:
    """Achieved bit rate of :func:`encode`: 8 * bytes / duration, headers included.

    Args:
        x: One signal, ``(n,)``.
        sr: Sample rate of ``x`` in Hz.
        codec: As for :func:`encode`.
        setting: As for :func:`encode`.

    Returns:
        kbit/s over the signal's duration.
    """
    return 8 * len(encode(x, sr, codec, setting)) / (len(x) / sr) / 1000


def _decoded(data: bytes, sr: int) -> np.ndarray:
    """Decode a file's bytes to float32 samples at ``sr``, delay and padding included."""
    y, rate = sf.read(io.BytesIO(data), dtype="float32")
    return _resample(y, rate, sr)


@functools.cache
def codec_delay(sr: int, codec: Codec, setting: float) -> int:
    """Samples by which a decoded signal lags its input; 0 where libsndfile removes it.

    Measured once per setting with a 1 s white-noise probe (seed 0): 0 if the decoded
    probe has the probe's length (libsndfile removed delay and padding, and at low bit
    rates a codec's phase distortion would make a measured lag jitter by a sample),
    else the lag in ``[0, sr / 4)`` of the peak of their cross-correlation.


    Args:
        sr: Sample rate in Hz.
        codec: As for :func:`encode`.
        setting: As for :func:`encode`.

    Returns:
        The delay in samples at ``sr``.
    """
    probe = (0.1 * np.random.default_rng(0).standard_normal(sr)).astype(np.float32)
    y = _decoded(encode(probe, sr, codec, setting), sr)
    if len(y) <= sr + 1:  # libsndfile removed delay and padding: nothing to measure
        return 0
    size = len(y) + len(probe)
    xcorr = np.fft.irfft(np.fft.rfft(y, size) * np.conj(np.fft.rfft(probe, size)), size)
    return int(np.argmax(xcorr[: sr // 4]))


def codec_round_trip(x: np.ndarray, sr: int, codec: Codec, setting: float) -> np.ndarray:
    """Encode and decode each signal with a lossy codec (see :func:`encode`).

    Args:
        x: Audio, ``(n,)`` or ``(b, n)``; each row is encoded on its own.
        sr: Sample rate of ``x`` in Hz.
        codec: ``mp3``, ``ogg-opus`` or ``ogg-vorbis``.
        setting: As for :func:`encode`.

    Returns:
        The decoded audio, float32, with ``x``'s shape and alignment.
    """
    x = _audio(x)
    n, delay = x.shape[-1], codec_delay(sr, codec, setting)
    rows = [_decoded(encode(r, sr, codec, setting), sr)[delay:] for r in x.reshape(-1, n)]
    rows = [_fit(r, n) for r in rows]
    return np.stack(rows).reshape(x.shape)


# ---------------------------------------------------------------------------- dispatch


@dataclass(frozen=True)
class Perturbation:
    """One kind of perturbation and its robustness sweep.

    Attributes:
        func: ``func(x, sr, strength, seed)``, the perturbation.
        unit: Unit of the strength, for axis labels.
        grid: Strengths of a sweep, from mild to strong (gain: ascending dB).
    """

    func: Callable[[np.ndarray, int, float, int], np.ndarray]
    unit: str
    grid: tuple[float, ...]


#: Every kind of :data:`gpwave.constants.PerturbationKind`, its unit and sweep grid.
PERTURBATIONS: dict[str, Perturbation] = {
    "gain": Perturbation(lambda x, sr, s, seed: gain(x, s), "dB", (-24, -12, -6, 6, 12)),
    "white-noise": Perturbation(
        lambda x, sr, s, seed: add_noise(x, s, "white", seed), "dB SNR", (40, 30, 20, 10, 5, 0)
    ),
    "pink-noise": Perturbation(
        lambda x, sr, s, seed: add_noise(x, s, "pink", seed), "dB SNR", (40, 30, 20, 10, 5, 0)
    ),
    "resample": Perturbation(lambda x, sr, s, seed: resample(x, sr, s), "Hz", (16000, 8000)),
    "mp3": Perturbation(
        lambda x, sr, s, seed: codec_round_trip(x, sr, "mp3", s), "kbit/s", (128, 96, 64, 48, 32)
    ),
    "ogg-opus": Perturbation(
        lambda x, sr, s, seed: codec_round_trip(x, sr, "ogg-opus", s),
        "kbit/s",
        (64, 32, 24, 16, 8),
    ),
    "ogg-vorbis": Perturbation(
        lambda x, sr, s, seed: codec_round_trip(x, sr, "ogg-vorbis", s),
        "quality",
        (0.6, 0.4, 0.2, 0.0),
    ),
    "shift": Perturbation(lambda x, sr, s, seed: shift(x, sr, s), "s", (0.001, 0.01, 0.1, 0.5)),
    "lowpass": Perturbation(
        lambda x, sr, s, seed: lowpass(x, sr, s), "Hz", (8000, 6000, 4000, 3000, 2000)
    ),
}


def apply(
    x: np.ndarray,
    sr: int,
    kind: PerturbationKind,
    strength: float,
    seed: int = 0,
    keep_length: bool = False,
) -> np.ndarray:
    """Apply one perturbation by name.

    Args:
        x: Audio, ``(n,)`` or ``(b, n)``.
        sr: Sample rate of ``x`` in Hz.
        kind: A key of :data:`PERTURBATIONS`.
        strength: In the kind's unit (:attr:`Perturbation.unit`).
        seed: Seed of random perturbations (the noises); the others ignore it.
        keep_length: Zero-pad what ``shift`` drops at the end, so fixed-length frames
            stay fixed-length (training augmentation, frame-level sweeps).

    Returns:
        The perturbed audio, float32 (``shift`` shortens it unless ``keep_length``).

    Raises:
        ValueError: For an unknown kind or a strength the kind does not take.
    """
    func = PERTURBATIONS[check_option(kind, PerturbationKind, "kind")].func
    y = func(x, sr, strength, seed)
    return _fit(y, np.shape(x)[-1]) if keep_length else y
