"""Detector models: the DCNN family, LCNN, the GMM and linear baselines, one registry.

Every model maps normalised features ``(B, C, F, T)`` (channels, frequency bins, time
steps) to logits ``(B, 2)`` (real, fake). :class:`Detector` wraps a feature extractor,
the fitted normaliser and one model into a module that takes waveforms, and loads
itself from a checkpoint with ``torch.load(..., weights_only=True)``.

The DCNN follows the architecture of Gasenzer & Wolter (TMLR 2024), written anew from
its description: a 2-D convolution stack over (packets x time), then the pooled time
axis becomes the channel axis of three dilated convolutions over (channels x packets),
a linear head per time step, and the mean over time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn

from gpwave.constants import FRAME_SECONDS, SAMPLE_RATE, Fitting, ModelName, check_option
from gpwave.errors import CheckpointError

Shape = tuple[int, int, int]


def count_parameters(model: nn.Module) -> int:
    """Count the trainable parameters of a model.

    Args:
        model: Any module.

    Returns:
        The number of scalar parameters with ``requires_grad``.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _probe(module: nn.Module, shape: Sequence[int]) -> torch.Size:
    """Output shape of ``module`` for one zero input of ``shape`` (without the batch)."""
    was_training = module.training
    module.eval()
    with torch.no_grad():
        out = module(torch.zeros(1, *shape))
    module.train(was_training)
    return out.shape[1:]


# --- DCNN -----------------------------------------------------------------------------
def _conv_stack(in_ch: int, channels: Sequence[int], kernel1: int, dropout: float) -> nn.Module:
    """The 2-D conv stack of the DCNN over (time x packets): PReLU, BatchNorm, 3 pools."""
    c1, c2, c3, c4, c5 = channels
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, c1, kernel1, padding=2),
        nn.PReLU(),
        nn.MaxPool2d(2, 2),
        nn.BatchNorm2d(c1, affine=False),
        nn.Conv2d(c1, c2, 1),
        nn.PReLU(),
        nn.BatchNorm2d(c2, affine=False),
        nn.Conv2d(c2, c3, 3, padding=1),
        nn.PReLU(),
        nn.MaxPool2d(2, 2),
        nn.BatchNorm2d(c3, affine=False),
        nn.Conv2d(c3, c4, 3, padding=1),
        nn.PReLU(),
        nn.BatchNorm2d(c4, affine=False),
        nn.Conv2d(c4, c5, 3, padding=1),
        nn.PReLU(),
        nn.BatchNorm2d(c5, affine=False),
        nn.Conv2d(c5, 64, 3, padding=1),
        nn.PReLU(),
        nn.MaxPool2d(2, 2),
    ]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def _dilated_block(time_dim: int, dilations: Sequence[int], dropout: float) -> nn.Module:
    """Three 2-D convs (kernels 3/5/7) over (channels x packets), time as channels."""
    layers: list[nn.Module] = []
    for kernel, padding, dilation in zip((3, 5, 7), (1, 2, 2), dilations, strict=True):
        layers += [
            nn.BatchNorm2d(time_dim, affine=True),
            nn.Conv2d(time_dim, time_dim, kernel, padding=padding, dilation=dilation),
            nn.PReLU(),
        ]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class DCNN(nn.Module):
    """Deep CNN with dilated convolutions (Gasenzer & Wolter, TMLR 2024).

    For 256 packets of a 1 s sym5 level-8 transform (95 time steps) it has 239,015
    parameters, the count of the reference checkpoints.

    Notebook: notebooks/03_train.py

    Args:
        input_shape: Feature shape ``(C, F, T)``.
        channels: Output channels of the first five convolutions.
        kernel1: Kernel size of the first convolution.
        dropout_cnn: Dropout after the conv stack.
        dropout_dil: Dropout after the dilated block.
        dilations: Dilations of the three convolutions of the dilated block.
        dilated: If False, drop the dilated block entirely (the paper's ablation).
        n_classes: Number of outputs.

    Attributes:
        memory_format: Memory format of the conv stack's input and of the conv weights.
            ``channels_last`` (the default) makes every convolution, PReLU, pool and
            BatchNorm of the stack run channels-last, measurably faster on CPU
            (``benchmarks/bench_train.py``); the ``state_dict`` values are unchanged.
            For the plain NCHW path set it to ``torch.contiguous_format`` on an instance
            and call ``.to(memory_format=torch.contiguous_format)``.
    """

    memory_format: torch.memory_format = torch.channels_last

    #: Fitted by gradient steps (:mod:`gpwave.fitting`).
    fitting: Fitting = "gradient"

    def __init__(
        self,
        input_shape: Shape,
        channels: Sequence[int] = (64, 64, 96, 128, 32),
        kernel1: int = 3,
        dropout_cnn: float = 0.6,
        dropout_dil: float = 0.2,
        dilations: Sequence[int] = (1, 2, 4),
        dilated: bool = True,
        n_classes: int = 2,
    ):
        super().__init__()
        c, f, t = input_shape
        self.cnn = _conv_stack(c, channels, kernel1, dropout_cnn)
        _, time_dim, packets = _probe(self.cnn, (c, t, f))
        self.dil = _dilated_block(time_dim, dilations, dropout_dil) if dilated else nn.Identity()
        try:
            out = _probe(self.dil, (time_dim, 64, packets))
        except RuntimeError as err:
            raise ValueError(f"DCNN: input shape {input_shape} is too small ({err})") from err
        if min(out) < 1:
            raise ValueError(f"DCNN: input shape {input_shape} is too small")
        self.fc = nn.Linear(out[1] * out[2], n_classes)
        self.to(memory_format=self.memory_format)  # conv weights too (values unchanged)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map features ``(B, C, F, T)`` to logits ``(B, n_classes)``."""
        return self.fc(self._blocks(x).flatten(2)).mean(1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The head's input averaged over the time channels, ``(B, fc.in_features)``.

        The head is linear, so ``fc(embed(x))`` equals :meth:`forward` up to rounding.
        """
        return self._blocks(x).flatten(2).mean(1)

    def _blocks(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(2, 3).contiguous(memory_format=self.memory_format)  # (B, C, T, F)
        x = self.cnn(x)  # (B, 64, T', F')
        return self.dil(x.transpose(1, 2).contiguous())  # (B, T', 64, F'): time as channels


# --- LCNN -----------------------------------------------------------------------------
class MaxFeatureMap(nn.Module):
    """Max-feature-map: split the channels in two halves and keep the element-wise max."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Halve the channel axis of ``x`` (B, 2C, ...) -> (B, C, ...)."""
        a, b = x.chunk(2, dim=1)
        return torch.maximum(a, b)


def _mfm(cin: int, cout: int, kernel: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, 2 * cout, kernel, padding=kernel // 2), MaxFeatureMap()]


class LCNN(nn.Module):
    """Light CNN with max-feature-map and two BLSTMs (ASVspoof 2021 LA baseline).

    Notebook: notebooks/04_generalization.py

    Args:
        input_shape: Feature shape ``(C, F, T)``.
        dropout: Dropout after the conv stack.
        n_classes: Number of outputs.
    """

    #: Fitted by gradient steps (:mod:`gpwave.fitting`).
    fitting: Fitting = "gradient"

    def __init__(self, input_shape: Shape, dropout: float = 0.7, n_classes: int = 2):
        super().__init__()
        c, f, t = input_shape
        bn = nn.BatchNorm2d
        self.cnn = nn.Sequential(
            *_mfm(c, 32, 5), nn.MaxPool2d(2, 2),
            *_mfm(32, 32, 1), bn(32, affine=False), *_mfm(32, 48, 3), nn.MaxPool2d(2, 2),
            bn(48, affine=False), *_mfm(48, 48, 1), bn(48, affine=False), *_mfm(48, 64, 3),
            nn.MaxPool2d(2, 2),
            *_mfm(64, 64, 1), bn(64, affine=False), *_mfm(64, 32, 3), bn(32, affine=False),
            *_mfm(32, 32, 1), bn(32, affine=False), *_mfm(32, 32, 3), nn.MaxPool2d(2, 2),
            nn.Dropout(dropout),
        )  # fmt: skip
        ch, _, freq = _probe(self.cnn, (c, t, f))
        if min(ch, freq) < 1:
            raise ValueError(f"LCNN: input shape {input_shape} is too small")
        dim = ch * freq
        self.lstm1 = nn.LSTM(dim, dim // 2, batch_first=True, bidirectional=True)
        self.lstm2 = nn.LSTM(dim, dim // 2, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map features ``(B, C, F, T)`` to logits ``(B, n_classes)``."""
        x = self.cnn(x.transpose(2, 3))  # (B, ch, T', F')
        x = x.transpose(1, 2).flatten(2)  # (B, T', ch*F')
        x = self.lstm1(x)[0]
        x = self.lstm2(x)[0]
        return self.fc(x).mean(1)


# --- linear probe ---------------------------------------------------------------------
class LinearProbe(nn.Module):
    """Logistic regression on the mean (over time) of the features: the bar to clear.

    Args:
        input_shape: Feature shape ``(C, F, T)``.
        n_classes: Number of outputs.
    """

    #: Fitted by gradient steps (:mod:`gpwave.fitting`).
    fitting: Fitting = "gradient"

    def __init__(self, input_shape: Shape, n_classes: int = 2):
        super().__init__()
        self.fc = nn.Linear(input_shape[0] * input_shape[1], n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map features ``(B, C, F, T)`` to logits ``(B, n_classes)``."""
        return self.fc(x.mean(-1).flatten(1))


# --- GMM ------------------------------------------------------------------------------
def deltas(x: torch.Tensor, width: int = 2) -> torch.Tensor:
    """Regression deltas along the last axis (HTK formula, edges replicated).

    Args:
        x: Tensor ``(..., T)``.
        width: Half-width N of the regression window (window 2N + 1).

    Returns:
        ``d_t = sum_n n (x_{t+n} - x_{t-n}) / (2 sum_n n^2)``, same shape as ``x``.
    """
    pad = torch.nn.functional.pad(x.flatten(0, -2)[:, None], (width, width), mode="replicate")
    pad = pad[:, 0].reshape(*x.shape[:-1], -1)
    t = x.shape[-1]
    num = sum(n * (pad[..., width + n : width + n + t] - pad[..., width - n : width - n + t])
              for n in range(1, width + 1))  # fmt: skip
    return num / (2 * sum(n * n for n in range(1, width + 1)))


class GMMDetector(nn.Module):
    """Two diagonal Gaussian mixtures (real, fake) over per-time-step feature vectors.

    The WaveFake baseline (LFCC-GMM / MFCC-GMM): each time step's feature vector (with
    deltas and double deltas) is scored under both mixtures; the logits are the mean
    log-likelihoods, so ``softmax`` gives ``sigmoid`` of the log-likelihood ratio.
    Fitted with :class:`sklearn.mixture.GaussianMixture` by :meth:`fit`; parameters live
    in buffers so checkpoints hold only tensors.

    Args:
        input_shape: Feature shape ``(C, F, T)``.
        n_components: Mixture components per class (WaveFake: 128).
        use_deltas: Append deltas and double deltas along time.
        max_iter: EM iterations of the fit.
        max_vectors: Most vectors per class used for fitting (random subset).
    """

    #: Fitted in closed form by :meth:`fit` on every training frame (:mod:`gpwave.fitting`).
    fitting: Fitting = "closed-form"

    def __init__(
        self,
        input_shape: Shape,
        n_components: int = 128,
        use_deltas: bool = True,
        max_iter: int = 100,
        max_vectors: int = 100_000,
    ):
        super().__init__()
        self.use_deltas = use_deltas
        self.max_iter = max_iter
        self.max_vectors = max_vectors
        dim = input_shape[0] * input_shape[1] * (3 if use_deltas else 1)
        k = n_components
        self.register_buffer("log_weights", torch.full((2, k), -math.log(k)))
        self.register_buffer("means", torch.zeros(2, k, dim))
        self.register_buffer("precisions", torch.ones(2, k, dim))
        # A dummy parameter keeps optimisers and DDP happy; it does not affect the output.
        self.dummy = nn.Parameter(torch.zeros(()))

    def vectors(self, x: torch.Tensor) -> torch.Tensor:
        """Per-time-step vectors ``(B, T, D)`` from features ``(B, C, F, T)``."""
        x = x.flatten(1, 2)
        if self.use_deltas:
            d = deltas(x)
            x = torch.cat([x, d, deltas(d)], dim=1)
        return x.transpose(1, 2)

    def fit(self, features: torch.Tensor, labels: torch.Tensor, seed: int = 0) -> None:
        """Fit one mixture per class with sklearn (diagonal covariances).

        Args:
            features: Training features ``(N, C, F, T)``.
            labels: 0 (real) / 1 (fake), shape ``(N,)``.
            seed: Random state of the fit and of the subsampling.
        """
        from sklearn.mixture import GaussianMixture

        rng = np.random.default_rng(seed)
        vec = self.vectors(features.float()).cpu().numpy()
        k = self.means.shape[1]
        for cls in (0, 1):
            x = vec[labels.cpu().numpy() == cls].reshape(-1, vec.shape[-1]).astype(np.float64)
            if len(x) > self.max_vectors:
                x = x[rng.choice(len(x), self.max_vectors, replace=False)]
            gmm = GaussianMixture(
                k, covariance_type="diag", max_iter=self.max_iter, random_state=seed, reg_covar=1e-4
            ).fit(x)
            self.log_weights[cls] = torch.as_tensor(np.log(gmm.weights_))
            self.means[cls] = torch.as_tensor(gmm.means_)
            self.precisions[cls] = torch.as_tensor(gmm.precisions_)

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        """Per-class log-likelihood of each time step, ``(B, T, 2)``."""
        v = self.vectors(x.float())  # (B, T, D)
        prec, mu = self.precisions, self.means  # (2, K, D)
        quad = (
            torch.einsum("btd,ckd->btck", v * v, prec)
            - 2 * torch.einsum("btd,ckd->btck", v, mu * prec)
            + (mu * mu * prec).sum(-1)
        )
        log_norm = 0.5 * (torch.log(prec).sum(-1) - v.shape[-1] * math.log(2 * math.pi))
        return torch.logsumexp(self.log_weights + log_norm - 0.5 * quad, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mean log-likelihoods (real, fake) over time as logits ``(B, 2)``."""
        return self.log_likelihood(x).mean(1) + 0 * self.dummy


# --- synchronised batch norm (DDP only) ----------------------------------------------
class AllReduceBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are pooled over all ranks, on any backend.

    :class:`torch.nn.SyncBatchNorm` refuses CPU modules under DDP; this does the same on
    gloo: per-channel sums, sums of squares and counts are all-reduced (with autograd,
    so gradients flow through the global statistics as in SyncBatchNorm). Outside an
    initialised process group, or in eval mode, it is a plain BatchNorm2d.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise with statistics of the global batch (training) or running stats."""
        import torch.distributed as dist

        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        c = x.shape[1]
        xd = x.double()  # one-pass sums in float64: no cancellation in E[x^2] - E[x]^2
        count = torch.full((1,), xd.numel() / c, dtype=xd.dtype, device=x.device)
        stats = all_reduce(torch.cat([xd.sum((0, 2, 3)), (xd * xd).sum((0, 2, 3)), count]))
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c : 2 * c] / n - mean * mean).clamp_min(0)
        dt = torch.float64 if x.dtype == torch.float64 else torch.float32
        mean, var, xf = mean.to(dt), var.to(dt), x.to(dt)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                m = self.momentum if self.momentum is not None else 0.1
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * n / (n - 1))
                self.num_batches_tracked.add_(1)
        y = (xf - mean[None, :, None, None]) * torch.rsqrt(var[None, :, None, None] + self.eps)
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y.to(x.dtype)


def sync_batchnorm(model: nn.Module, device: str | torch.device = "cpu") -> nn.Module:
    """Synchronise BatchNorm statistics across DDP ranks (call only under DDP).

    Args:
        model: A model with plain BatchNorm2d layers.
        device: On CUDA, torch's SyncBatchNorm; elsewhere :class:`AllReduceBatchNorm`.

    Returns:
        The converted model (same state-dict keys).
    """
    if torch.device(device).type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in model.named_children():
        if type(child) is nn.BatchNorm2d:
            new = AllReduceBatchNorm(
                child.num_features,
                child.eps,
                child.momentum,
                child.affine,
                child.track_running_stats,
            ).to(next(child.buffers()).device)
            new.load_state_dict(child.state_dict())
            if child.affine:
                new.weight, new.bias = child.weight, child.bias
            setattr(model, name, new)
        else:
            sync_batchnorm(child, device)
    return model


# --- registry -------------------------------------------------------------------------
def _dcnn_nodrop(shape: Shape, **kw: Any) -> nn.Module:
    return DCNN(shape, **{"dropout_cnn": 0.0, "dropout_dil": 0.0, **kw})


MODELS: dict[str, Callable[..., nn.Module]] = {
    "dcnn": DCNN,
    "dcnn_nodil": lambda shape, **kw: DCNN(shape, **{"dilated": False, **kw}),
    "dcnn_nodrop": _dcnn_nodrop,
    "lcnn": LCNN,
    "gmm": GMMDetector,
    "linear": LinearProbe,
}


def build_model(name: ModelName, input_shape: Sequence[int], **kwargs: Any) -> nn.Module:
    """Build a detector model by name.

    Args:
        name: One of :data:`gpwave.constants.ModelName`.
        input_shape: Feature shape ``(C, F, T)``.
        **kwargs: Passed to the model's constructor.

    Returns:
        A module mapping features ``(B, C, F, T)`` to logits ``(B, 2)``.
    """
    check_option(name, ModelName, "model")
    return MODELS[name](tuple(int(s) for s in input_shape), **kwargs)


# --- Detector -------------------------------------------------------------------------
def standardize_level(x: torch.Tensor, floor: float = 1e-6) -> torch.Tensor:
    """Scale each waveform to unit RMS, so a gain cannot change any feature.

    Args:
        x: Waveforms ``(B, N)`` or ``(B, 1, N)``.
        floor: Smallest RMS divided by (digital silence stays finite).

    Returns:
        ``x / max(rms(x), floor)`` per waveform.
    """
    rms = x.float().pow(2).mean(-1, keepdim=True).sqrt().clamp_min(floor)
    return x / rms


def log_odds(logits: torch.Tensor) -> torch.Tensor:
    """Fake log-odds ``(B,)`` of logits ``(B, 2)`` (real, fake): fake minus real.

    The score every EER uses (:mod:`gpwave.evaluate`): it ranks like the softmax's fake
    column without its saturation (in float32 every log-odds above about 17 becomes the
    probability 1.0, so frames a detector is very sure of would tie).
    """
    return logits[:, 1] - logits[:, 0]


class Detector(nn.Module):
    """Waveforms in, logits out: feature extractor + normaliser + model.

    Notebook: notebooks/03_train.py

    Args:
        feature: A :class:`gpwave.transforms.FeatureConfig` or its ``to_dict()``.
        model: Model name (:data:`gpwave.constants.ModelName`).
        n_samples: Samples per input frame (e.g. 22050 for 1 s).
        model_kwargs: Passed to :func:`build_model`.
        level_norm: Standardise each frame's RMS before the features (gain invariance).
        calibration: ``(a, b)``: :meth:`fake_probability` is ``sigmoid(a * log-odds + b)``
            (:func:`gpwave.metrics.platt_calibration`, fitted by training on the best
            epoch's validation split); None: the plain softmax. Scores for EERs
            (:meth:`fake_log_odds`) never use it.
    """

    def __init__(
        self,
        feature: Any,
        model: ModelName = "dcnn",
        n_samples: int = round(FRAME_SECONDS * SAMPLE_RATE),
        model_kwargs: dict[str, Any] | None = None,
        level_norm: bool = True,
        calibration: Sequence[float] | None = None,
    ):
        super().__init__()
        from gpwave.transforms import FeatureConfig, FeatureExtractor, Normalizer

        cfg = FeatureConfig.from_dict(feature) if isinstance(feature, dict) else feature
        self.feature_config = cfg
        self.model_name = model
        self.n_samples = int(n_samples)
        self.model_kwargs = dict(model_kwargs or {})
        self.level_norm = bool(level_norm)
        self.calibration = calibration
        self.extractor = FeatureExtractor(cfg)
        self.input_shape = tuple(int(s) for s in self.extractor.output_shape(self.n_samples))
        self.normalizer = Normalizer(self.input_shape)
        self.model = build_model(model, self.input_shape, **self.model_kwargs)

    def spec(self) -> dict[str, Any]:
        """Everything needed to rebuild this detector (plain data, checkpoint-safe)."""
        return {
            "feature": self.feature_config.to_dict(),
            "model": self.model_name,
            "n_samples": self.n_samples,
            "model_kwargs": {
                k: list(v) if isinstance(v, tuple) else v for k, v in self.model_kwargs.items()
            },  # fmt: skip
            "level_norm": self.level_norm,
            "calibration": None if self.calibration is None else list(self.calibration),
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Detector:
        """Rebuild an (untrained) detector from :meth:`spec`."""
        return cls(
            spec["feature"],
            spec["model"],
            spec["n_samples"],
            spec.get("model_kwargs"),
            spec.get("level_norm", True),
            spec.get("calibration"),
        )

    @property
    def calibration(self) -> tuple[float, float] | None:
        """``(a, b)`` of :meth:`fake_probability`, or None (checked on every assignment)."""
        return self._calibration

    @calibration.setter
    def calibration(self, value: Sequence[float] | None) -> None:
        self._calibration = check_calibration(value)

    @property
    def fitting(self) -> Fitting:
        """How the model is fitted: its class's ``fitting`` (:mod:`gpwave.fitting`)."""
        return check_option(self.model.fitting, Fitting, f"{self.model_name}.fitting")

    def raw_features(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Un-normalised features ``(B, C, F, T)`` of waveforms ``(B, N)`` (float32)."""
        x = waveforms.float()
        if x.dim() == 3:
            x = x[:, 0]
        if self.level_norm:
            x = standardize_level(x)
        with torch.autocast(x.device.type, enabled=False):
            return self.extractor(x)

    def features(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Normalised features ``(B, C, F, T)`` of waveforms ``(B, N)``."""
        return self.normalizer(self.raw_features(waveforms))

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, 2)`` from normalised features."""
        return self.model(features)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, 2)`` (real, fake) of waveforms ``(B, N)``."""
        return self.head(self.features(waveforms))

    @torch.no_grad()
    def fake_log_odds(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Fake log-odds ``(B,)`` (:func:`log_odds`): ranks like :meth:`fake_probability`.

        An EER of tied scores is 0.5 whatever their order, and the probability ties the
        frames a detector is very sure of; the log-odds do not.
        """
        return log_odds(self(waveforms).float())

    @torch.no_grad()
    def fake_probability(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Fake probability ``(B,)`` for verdicts: calibrated if the detector has a fit.

        With :attr:`calibration` ``(a, b)`` it is ``sigmoid(a * log-odds + b)``, else the
        softmax of the logits (fake column). Both rank like :meth:`fake_log_odds`.
        """
        if self.calibration is None:
            return torch.softmax(self(waveforms).float(), dim=-1)[:, 1]
        a, b = self.calibration
        return torch.sigmoid(a * self.fake_log_odds(waveforms) + b)

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu") -> Detector:
        """Load a trained detector (eval mode) from a checkpoint written by training.

        Notebook: notebooks/03_train.py

        Args:
            path: A ``best.pt`` / ``last.pt`` file.
            map_location: Device for the tensors.

        Returns:
            The detector with its weights and fitted normaliser.

        Raises:
            CheckpointError: If the file is missing, corrupt or not a gpwave checkpoint.
        """
        ckpt = load_checkpoint(path, map_location)
        try:
            check_spec(ckpt["detector"])  # before anything is allocated
            det = cls.from_spec(ckpt["detector"])
            det.load_state_dict(ckpt["model"])
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise CheckpointError(f"{path}: not a usable gpwave checkpoint ({err})") from err
        return det.to(map_location).eval()


#: Largest frame a checkpoint may ask for (2**24 samples: 12.7 min at 22,050 Hz).
MAX_SAMPLES = 2**24
#: Largest feature map per frame, in numbers (2**24 float32s: 64 MiB).
MAX_FEATURE_SIZE = 2**24


def check_calibration(calibration: Any) -> tuple[float, float] | None:
    """A detector's calibration ``(a, b)`` as floats, or None.

    Raises:
        ValueError: Not two finite numbers with ``a > 0``.

    Example:
        >>> check_calibration([2, -12])
        (2.0, -12.0)
    """
    if calibration is None:
        return None
    try:
        a, b = (float(v) for v in calibration)
    except (TypeError, ValueError):
        raise ValueError(f"calibration {calibration!r}: expected two numbers (a, b)") from None
    if not (math.isfinite(a) and math.isfinite(b) and a > 0):
        raise ValueError(f"calibration {calibration!r}: expected finite numbers with a > 0")
    return a, b


def check_spec(spec: Any) -> dict[str, Any]:
    """Check a detector spec (:meth:`Detector.spec`) against sane bounds before building it.

    A checkpoint's spec decides what :meth:`Detector.from_spec` allocates: a crafted
    ``n_samples`` or feature level would take the machine's memory.

    Args:
        spec: The spec read from a checkpoint.

    Returns:
        ``spec``.

    Raises:
        ValueError: A missing or out-of-range entry (the message names it).

    Example:
        >>> check_spec({"feature": {}, "model": "dcnn", "n_samples": 2**33})
        Traceback (most recent call last):
        ValueError: n_samples=8589934592: expected an integer from 1 to 16777216
    """
    from gpwave.transforms import FeatureConfig, FeatureExtractor

    if not isinstance(spec, dict) or not isinstance(spec.get("feature"), dict):
        raise ValueError("the detector entry is not a mapping with a feature mapping")
    n = spec.get("n_samples")
    if not (isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= MAX_SAMPLES):
        raise ValueError(f"n_samples={n!r}: expected an integer from 1 to {MAX_SAMPLES}")
    check_option(spec.get("model"), ModelName, "model")
    if not isinstance(spec.get("model_kwargs") or {}, dict):
        raise ValueError(f"model_kwargs={spec.get('model_kwargs')!r}: expected a mapping")
    check_calibration(spec.get("calibration"))
    cfg = FeatureConfig.from_dict(spec["feature"])
    # output_shape reads only .cfg: the shape without building the extractor's filters
    size = math.prod(FeatureExtractor.output_shape(SimpleNamespace(cfg=cfg), n))
    if size > MAX_FEATURE_SIZE:
        raise ValueError(f"feature {cfg.kind} of {n} samples has {size} numbers per frame "
                         f"(at most {MAX_FEATURE_SIZE})")  # fmt: skip
    return spec


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint dict safely (``weights_only=True``).

    Args:
        path: The checkpoint file.
        map_location: Device for the tensors.

    Returns:
        The checkpoint dictionary.

    Raises:
        CheckpointError: If the file is missing or cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means corrupt
        if "Weights only load failed" in str(err):  # pickled objects that would run code
            raise CheckpointError(
                f"{path}: refused: the file holds pickled code (objects that run when loaded), "
                "not only weights and settings; it was not loaded"
            ) from None
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path}: corrupt or unreadable checkpoint ({reason})") from None
    if not isinstance(ckpt, dict) or "detector" not in ckpt or "model" not in ckpt:
        raise CheckpointError(f"{path}: not a gpwave checkpoint (no detector/model entries)")
    return ckpt
