"""Option strings as ``Literal`` aliases, in one place, so a typo is a type error.

Every function that takes one of these options validates it with :func:`check_option`,
which names the allowed values in its error message.
"""

from __future__ import annotations

from typing import Literal, get_args

#: Boundary handling of the wavelet transforms (the modes ptwt offers).
BoundaryMode = Literal["reflect", "zero", "constant", "periodic", "symmetric"]
#: Packet order along the frequency axis: ``freq`` (ascending frequency, Gray code)
#: or ``natural`` (the filter-bank tree order of ``pywt.WaveletPacket``).
PacketOrder = Literal["freq", "natural"]
#: Input features a detector can be trained on (``waveform``: the frame itself, for
#: models that compute their own features).
FeatureKind = Literal["packets", "stft", "lfcc", "mfcc", "waveform"]
#: Detector models in the registry of :mod:`gpwave.models`.
ModelName = Literal["dcnn", "dcnn_nodil", "dcnn_nodrop", "lcnn", "gmm", "linear"]
#: Attribution methods of :mod:`gpwave.attribution`.
AttributionMethod = Literal["integrated_gradients", "saliency"]
#: Attribution targets: the real class, the fake class, or both.
AttributionTarget = Literal["real", "fake", "both"]
#: Data splits.
Split = Literal["train", "val", "test"]
#: Sample format of the frame store.
StoreDtype = Literal["int16", "float16"]
#: Datasets :mod:`gpwave.download` knows how to fetch.
DatasetName = Literal[
    "mini", "wavefake", "ljspeech", "extension", "models", "speakers", "speakers-train"
]
#: The paper's released detectors (:mod:`gpwave.pretrained`).
PaperModelName = Literal["paper-sym5", "paper-coif4", "paper-stft"]
#: Frequency-axis scaling of fingerprint plots.
AxisScale = Literal["linear", "log"]
#: Colour of additive noise in :mod:`gpwave.perturb`: flat power or 1/f power.
NoiseColor = Literal["white", "pink"]
#: Lossy codecs :mod:`gpwave.perturb` encodes and decodes in memory through libsndfile.
Codec = Literal["mp3", "ogg-opus", "ogg-vorbis"]
#: Verdicts of the book on a claim of the paper (:mod:`gpwave.findings`).
Verdict = Literal["reproduced", "not at this scale", "contradicted", "not measured"]
#: What :func:`gpwave.evaluate.score_waveforms` returns: the fake log-odds (the EER's
#: score, never saturated) or the fake probability (for people and the 0.5 verdict).
ScoreKind = Literal["log-odds", "probability"]
#: Kinds of perturbation in :data:`gpwave.perturb.PERTURBATIONS`.
PerturbationKind = Literal[
    "gain",
    "white-noise",
    "pink-noise",
    "resample",
    "mp3",
    "ogg-opus",
    "ogg-vorbis",
    "shift",
    "lowpass",
]

#: How a model is fitted: by gradient steps, or in closed form on a stream of frames
#: (:attr:`gpwave.models.GMMDetector.fitting`).
Fitting = Literal["gradient", "closed-form"]

#: Arithmetic of a CPU training step (:attr:`gpwave.config.TrainConfig.precision`):
#: float32, or bfloat16 autocast (oneDNN's bf16 kernels on AVX-512 BF16 / AMX CPUs).
Precision = Literal["fp32", "bf16"]

#: What a published model's name may look like (:func:`gpwave.hub.check_name`).
MODEL_NAME_PATTERN = r"[a-z0-9][a-z0-9_.-]{0,63}"

#: Sample rate of LJSpeech and WaveFake.
SAMPLE_RATE = 22050
#: Length of a frame (a detector's input) in seconds.
FRAME_SECONDS = 1.0
#: Utterance fractions of the train, validation and test splits.
SPLIT = (0.8, 0.1, 0.1)
#: Bootstrap resamples of an EER's confidence interval.
N_BOOT = 1000
#: Wavelet-packet level of the fingerprint spectra (2**14 bands: 0.67 Hz at 22,050 Hz).
FINGERPRINT_LEVEL = 14
#: Folder-name prefix letter of the real (bona fide) source.
REAL_LETTER = "A"

#: A detection window is *silent* (not evidence either way, left out of a file's score)
#: when its RMS is below this absolute level, in dB relative to full scale ...
SILENCE_FLOOR_DBFS = -70.0
#: ... or more than this many dB below the loudest window of the same file, so that
#: appending silence or near-silent padding to a file cannot move its verdict.
SILENCE_RELATIVE_DB = 40.0


def check_option(value: str, alias: object, name: str) -> str:
    """Return ``value`` if it is one of the strings of ``alias``, else raise.

    Args:
        value: The option string given by the caller.
        alias: A ``Literal`` alias from this module.
        name: The argument's name, for the message.

    Returns:
        ``value`` unchanged.

    Raises:
        ValueError: If ``value`` is not allowed; the message lists the allowed values.
    """
    allowed = get_args(alias)
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(map(repr, allowed))}")
    return value
