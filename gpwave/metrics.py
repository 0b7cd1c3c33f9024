"""Pure metrics of binary detection scores: ROC, EER, accuracy, bootstrap CIs, paired tests.

Everything here takes plain arrays (labels 1 fake / 0 real, continuous fake scores,
group ids) and returns numbers; nothing knows about detectors, stores or tables. The
EER is read off the ROC by linear interpolation between its points (the test suite
compares it with scikit-learn's ``roc_curve``); confidence intervals resample whole
groups (utterances), because frames of one utterance are not independent.

Notebook: notebooks/04_generalization.py
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from math import comb
from typing import Any

import numpy as np


def _check_binary(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).astype(int).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if labels.shape != scores.shape:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} differ in shape")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    if labels.min(initial=1) == labels.max(initial=0):
        raise ValueError("the EER needs both classes (real and fake) among the labels")
    return labels, scores


def roc(labels: Sequence[int], scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """ROC points (false and true positive rates) over every distinct threshold.

    Args:
        labels: 1 fake (positive), 0 real.
        scores: Continuous fake scores (higher = more fake).

    Returns:
        ``(fpr, tpr)``, both starting at 0 and ending at 1.

    Example:
        >>> fpr, tpr = roc([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9])
        >>> fpr.tolist(), tpr.tolist()
        ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    y, s = _check_binary(np.asarray(labels), np.asarray(scores))
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tps = np.cumsum(y)[last]
    fps = last + 1 - tps
    return np.r_[0.0, fps / fps[-1]], np.r_[0.0, tps / tps[-1]]


def eer(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Equal error rate, interpolated linearly on the ROC where FPR = FNR.

    Notebook: notebooks/04_generalization.py

    Args:
        labels: 1 fake, 0 real.
        scores: Continuous fake scores.

    Returns:
        The EER in [0, 1] (0: perfect separation, 0.5: chance).

    Example:
        >>> eer([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
        0.0
        >>> eer([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9])
        0.5
    """
    fpr, tpr = roc(labels, scores)
    d = (1.0 - tpr) - fpr  # decreasing from 1 to -1
    i = int(np.argmax(d <= 0))
    if d[i] == 0 or i == 0:
        return float(fpr[i])
    t = d[i - 1] / (d[i - 1] - d[i])
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def probability(log_odds: Sequence[float] | np.ndarray) -> np.ndarray:
    """Fake probabilities (float64) of fake log-odds: the logistic function, for display.

    Notebook: notebooks/05_dilation.py

    Args:
        log_odds: Scores from :func:`gpwave.evaluate.score_waveforms`.

    Returns:
        Probabilities in [0, 1], same shape.

    Example:
        >>> probability([0.0, 40.0]).tolist()
        [0.5, 1.0]
    """
    from scipy.special import expit

    return expit(np.asarray(log_odds, dtype=np.float64))


def accuracy(labels: Sequence[int], scores: Sequence[float], threshold: float = 0.0) -> float:
    """Fraction of frames classified correctly when ``score >= threshold`` means fake.

    Notebook: notebooks/04_generalization.py

    Args:
        labels: 1 fake, 0 real.
        scores: Fake log-odds.
        threshold: Decision threshold (log-odds 0 is the argmax of the two logits).

    Returns:
        The accuracy in [0, 1].

    Example:
        >>> accuracy([0, 1, 1, 0], [-2.0, 3.0, -1.0, 0.5])
        0.5
    """
    y = np.asarray(labels).astype(int)
    return float(np.mean((np.asarray(scores) >= threshold).astype(int) == y))


def argmax_eer(labels: Sequence[int], scores: Sequence[float], threshold: float = 0.0) -> float:
    """The reference implementation's EER: the EER of argmax labels instead of scores.

    Thresholding first leaves a 3-point ROC, (0, 0), (FPR, TPR), (1, 1); its EER is
    read off by linear interpolation like :func:`eer`. With a false positive rate a and
    true positive rate b it is ``a / (a + b)`` if ``a + b >= 1``, else
    ``a + (1 - a) (1 - a - b) / (2 - a - b)``. It mixes the EER with the threshold's
    calibration, so it is reported only to relate numbers to the paper's.

    Args:
        labels: 1 fake, 0 real.
        scores: Fake log-odds (the argmax of two logits is ``score >= 0``).
        threshold: Decision threshold.

    Returns:
        The argmax EER in [0, 1].

    Example:
        >>> argmax_eer([0, 0, 1, 1], [-1.0, 2.0, 1.0, 3.0])  # a = 0.5, b = 1
        0.3333333333333333
    """
    return eer(labels, (np.asarray(scores, dtype=np.float64) >= threshold).astype(float))


def group_bootstrap(
    labels: Sequence[int],
    groups: Sequence[Any],
    stat: Callable[[np.ndarray], float],
    n_boot: int = 1000,
    seed: int = 0,
) -> list[float]:
    """``stat(idx)`` over bootstrap resamples of whole groups that hold both classes.

    Each resample draws as many groups as there are, with replacement, and passes the
    concatenated frame indices of the drawn groups to ``stat``; resamples with only one
    class are skipped (an EER needs both).

    Args:
        labels: 1 fake, 0 real, per frame.
        groups: Group id (utterance) of each frame.
        stat: Statistic of an index array into the frames.
        n_boot: Bootstrap resamples.
        seed: Seed of the resampling.

    Returns:
        The statistic of every usable resample.

    Example:
        >>> y = np.array([0, 1, 0, 1])
        >>> values = group_bootstrap(y, ["u", "u", "v", "v"], lambda i: len(i), n_boot=5)
        >>> values
        [4, 4, 4, 4, 4]
    """
    labels = np.asarray(labels)
    _, gid = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    members = [np.nonzero(gid == g)[0] for g in range(gid.max() + 1)]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(members), len(members))
        idx = np.concatenate([members[g] for g in pick])
        if 0 < labels[idx].sum() < len(idx):
            values.append(stat(idx))
    return values


def resample_counts(n_groups: int, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """How often each group is drawn in each bootstrap resample, drawn all at once.

    The draws are exactly :func:`group_bootstrap`'s: one ``(n_boot, n_groups)`` call of
    the generator gives the same integers as ``n_boot`` calls of ``n_groups`` each.

    Args:
        n_groups: Number of groups.
        n_boot: Bootstrap resamples.
        seed: Seed of the resampling.

    Returns:
        int64 counts ``(n_boot, n_groups)``; each row sums to ``n_groups``.

    Example:
        >>> resample_counts(3, n_boot=2, seed=0).tolist()
        [[0, 2, 1], [3, 0, 0]]
    """
    pick = np.random.default_rng(seed).integers(0, n_groups, (n_boot, n_groups))
    flat = (pick + n_groups * np.arange(n_boot)[:, None]).ravel()
    return np.bincount(flat, minlength=n_boot * n_groups).reshape(n_boot, n_groups)


#: Frames x resamples weighed at once by :func:`bootstrap_eers` (bounds its memory:
#: 2**20 float64 weights are 8 MiB per array; larger blocks were no faster).
BOOT_CHUNK = 2**20


def bootstrap_eers(
    labels: Sequence[int],
    scores: Sequence[Sequence[float]],
    groups: Sequence[Any],
    n_boot: int = 1000,
    seed: int = 0,
    device: Any = None,
) -> np.ndarray:
    """EERs of every usable group resample (:func:`group_bootstrap`'s), without a loop.

    A resample is a weighting of the frames (each frame counts as often as its group was
    drawn, :func:`resample_counts`); the ROC of a weighting is a cumulative sum of the
    weights in score order, so the EERs of a block of resamples are a few array
    operations. Integer weights make the ROC exact, so on the CPU every value equals
    ``eer(labels[idx], scores[idx])`` of the loop, bit for bit; on CUDA (torch, float64)
    they agree to rounding. Resamples with only one class are skipped, as there.

    Notebook: notebooks/04_generalization.py

    Args:
        labels: 1 fake, 0 real.
        scores: One or more score arrays aligned with ``labels`` (e.g. two detectors'
            for a paired difference); all are resampled alike.
        groups: Group id (utterance) of each frame.
        n_boot: Bootstrap resamples.
        seed: Seed of the resampling.
        device: None or ``cpu``: numpy; a CUDA device: torch on that device.

    Returns:
        float64 ``(len(scores), n_usable)``.

    Example:
        >>> y, g = [0, 1, 0, 1], ["u", "u", "v", "v"]
        >>> bootstrap_eers(y, [[0.1, 0.9, 0.2, 0.8], [0.9, 0.1, 0.8, 0.2]], g, n_boot=3)
        array([[0., 0., 0.],
               [1., 1., 1.]])
    """
    y = np.asarray(labels).astype(np.float64).reshape(-1)
    _, gid = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    counts = resample_counts(int(gid.max()) + 1 if gid.size else 0, n_boot, seed)
    counts = counts.astype(np.float64)  # integers below 2**53: sums stay exact
    on_cuda = device is not None and str(device).startswith("cuda")
    out = []
    for s in scores:
        s = np.asarray(s, dtype=np.float64).reshape(-1)
        order = np.argsort(-s, kind="mergesort")  # as in roc()
        last = np.r_[np.nonzero(np.diff(s[order]))[0], len(s) - 1]
        args = (counts, gid[order], y[order], last)
        out.append(_eers_torch(*args, device) if on_cuda else _eers_numpy(*args))
    return np.stack(out) if out else np.empty((0, 0))


def _eers_numpy(counts: np.ndarray, gid: np.ndarray, y: np.ndarray, last: np.ndarray):
    step = max(1, BOOT_CHUNK // max(1, len(y)))
    parts = [
        _weighted_eers(counts[i : i + step][:, gid], y, last, np.take_along_axis, np.where)
        for i in range(0, len(counts), step)
    ]
    return np.concatenate(parts) if parts else np.empty(0)


def _eers_torch(counts, gid, y, last, device) -> np.ndarray:
    import torch

    def t(a: np.ndarray) -> Any:
        return torch.as_tensor(a, device=device)

    counts, gid, y, last = t(counts), t(gid), t(y), t(last)
    step = max(1, BOOT_CHUNK // max(1, len(y)))
    parts = [
        _weighted_eers(counts[i : i + step][:, gid], y, last, torch.take_along_dim, torch.where)
        for i in range(0, len(counts), step)
    ]
    return torch.cat(parts).cpu().numpy() if parts else np.empty(0)


def _weighted_eers(w: Any, y: Any, last: Any, take: Callable, where: Callable) -> Any:
    """:func:`eer` of each row of frame weights ``w`` (score order), numpy or torch alike.

    ``y`` are the labels and ``last`` the last position of each distinct score, in the
    same order. The arithmetic is :func:`roc` + :func:`eer`'s, step by step, so equal
    weights give equal floats; the ROC's (0, 0) point is implicit (its d is 1).
    """
    tp = (w * y).cumsum(1)[:, last]
    fp = w.cumsum(1)[:, last] - tp  # integers: exact
    ok = (tp[:, -1] > 0) & (fp[:, -1] > 0)  # both classes drawn
    tp, fp = tp[ok], fp[ok]
    fpr = fp / fp[:, -1:]
    d = (1.0 - tp / tp[:, -1:]) - fpr
    j = ((d <= 0) * 1).argmax(1)[:, None]  # first ROC point with FNR <= FPR
    jp = j - (j > 0) * 1
    dj, fj = take(d, j, 1)[:, 0], take(fpr, j, 1)[:, 0]
    first = j[:, 0] == 0
    dp = where(first, 1.0, take(d, jp, 1)[:, 0])
    fp0 = where(first, 0.0, take(fpr, jp, 1)[:, 0])
    t = dp / (dp - dj)
    return where(dj == 0, fj, fp0 + t * (fj - fp0))


def percentile_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Central percentile interval of bootstrap values; ``(nan, nan)`` if there are none.

    Args:
        values: Bootstrap statistics.
        level: Coverage of the interval.

    Returns:
        ``(low, high)``.

    Example:
        >>> percentile_interval([0.0, 1.0, 2.0, 3.0, 4.0], level=0.5)
        (1.0, 3.0)
    """
    if len(values) == 0:
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))


def eer_ci(
    labels: Sequence[int],
    scores: Sequence[float],
    groups: Sequence[Any],
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    device: Any = None,
) -> tuple[float, float]:
    """Bootstrap confidence interval of the EER, resampling groups (utterances).

    The resamples are :func:`group_bootstrap`'s (same seed, same draws, same values);
    :func:`bootstrap_eers` computes their EERs all at once.

    Args:
        labels: 1 fake, 0 real.
        scores: Continuous fake scores.
        groups: Group id (utterance) of each frame; whole groups are resampled.
        n_boot: Bootstrap resamples.
        level: Coverage of the interval.
        seed: Seed of the resampling.
        device: Where the resamples' EERs are computed (:func:`bootstrap_eers`).

    Returns:
        ``(low, high)`` percentile interval; ``(nan, nan)`` if no resample has both classes.

    Example:
        >>> y, s = [0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8]
        >>> eer_ci(y, s, ["u", "u", "v", "v"], n_boot=20)  # separable in every resample
        (0.0, 0.0)
    """
    y, s = _check_binary(np.asarray(labels), np.asarray(scores))
    return percentile_interval(bootstrap_eers(y, [s], groups, n_boot, seed, device)[0], level)


def paired_eer_difference(
    labels: Sequence[int],
    scores_a: Sequence[float],
    scores_b: Sequence[float],
    groups: Sequence[Any],
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    device: Any = None,
) -> tuple[float, float, float]:
    """EER(A) - EER(B) on the same frames, with a paired bootstrap interval.

    Each resample draws whole groups (utterances) once and scores both detectors on it,
    so the interval reflects the difference, not the two EERs' separate spreads.

    Args:
        labels: 1 fake, 0 real.
        scores_a: Fake scores of detector A.
        scores_b: Fake scores of detector B on the same frames.
        groups: Group id (utterance) of each frame.
        n_boot: Bootstrap resamples.
        level: Coverage of the interval.
        seed: Seed of the resampling.
        device: Where the resamples' EERs are computed (:func:`bootstrap_eers`).

    Returns:
        ``(difference, low, high)``; a negative difference means A has the lower EER.

    Example:
        >>> y, g = [0, 1, 0, 1], ["u", "u", "v", "v"]
        >>> paired_eer_difference(y, [0.1, 0.9, 0.2, 0.8], [0.9, 0.1, 0.8, 0.2], g, n_boot=20)
        (-1.0, -1.0, -1.0)
    """
    y, a = _check_binary(np.asarray(labels), np.asarray(scores_a))
    b = np.asarray(scores_b, dtype=float)
    if b.shape != a.shape:
        raise ValueError(f"scores_b has shape {b.shape}, scores_a {a.shape}")
    ea, eb = bootstrap_eers(y, [a, b], groups, n_boot, seed, device)
    return (eer(y, a) - eer(y, b), *percentile_interval(ea - eb, level))


def mcnemar_test(
    labels: Sequence[int],
    scores_a: Sequence[float],
    scores_b: Sequence[float],
    threshold: float = 0.0,
) -> tuple[int, int, float]:
    """Exact McNemar test: do A and B err on the same frames equally often?

    Counts the frames only A classifies correctly and those only B does (at
    ``score >= threshold`` = fake); under the null hypothesis either is as likely, so the
    two-sided p-value is the exact binomial tail of the smaller count. It treats frames
    as independent, which frames of one utterance are not: read it next to
    :func:`paired_eer_difference`, whose interval resamples utterances.

    Args:
        labels: 1 fake, 0 real.
        scores_a: Fake log-odds of detector A.
        scores_b: Fake log-odds of detector B on the same frames.
        threshold: Decision threshold of both.

    Returns:
        ``(only_a, only_b, p_value)``.

    Example:
        >>> mcnemar_test([1, 1, 1, 0], [1.0, 1.0, 1.0, -1.0], [-1.0, -1.0, 1.0, -1.0])
        (2, 0, 0.5)
    """
    y = np.asarray(labels).astype(int).reshape(-1)
    ok_a = (np.asarray(scores_a).reshape(-1) >= threshold).astype(int) == y
    ok_b = (np.asarray(scores_b).reshape(-1) >= threshold).astype(int) == y
    only_a, only_b = int((ok_a & ~ok_b).sum()), int((ok_b & ~ok_a).sum())
    n, k = only_a + only_b, min(only_a, only_b)
    tail = sum(comb(n, i) for i in range(k + 1)) / 2**n
    return only_a, only_b, float(min(1.0, 2 * tail))


def mean_t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean of a few values (one per seed) and its Student-t interval.

    The interval treats the values as independent draws (e.g. seeds); with fewer than
    two values it is undefined (NaN).

    Notebook: notebooks/08_generalization_needs.py

    Args:
        values: The values.
        level: Coverage of the interval.

    Returns:
        ``(mean, low, high)``.

    Example:
        >>> [round(v, 3) for v in mean_t_interval([1.0, 2.0, 3.0])]
        [2.0, -0.484, 4.484]
    """
    from scipy import stats

    x = np.asarray(values, dtype=float)
    mean = float(x.mean()) if x.size else float("nan")
    if x.size < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return mean, mean - half, mean + half


def platt_calibration(
    labels: Sequence[int], scores: Sequence[float], c: float = 1.0
) -> list[float] | None:
    """Platt scaling: ``(a, b)`` so that ``sigmoid(a * score + b)`` is a fake probability.

    A logistic regression of the labels on the scores, both classes weighted equally
    (a verdict at 0.5 then sits near the EER's operating point, whatever the class
    ratio) and the slope lightly L2-penalised so that separable scores keep a finite
    fit. It minimises scikit-learn's ``LogisticRegression(C=c, class_weight="balanced")``
    objective on the standardised scores (the test suite compares the two); a few
    Newton steps suffice for two parameters. Training fits it on the validation split
    of the best epoch, so a detector's verdicts are calibrated where it was selected.

    Notebook: notebooks/03_train.py

    Args:
        labels: 1 fake, 0 real.
        scores: Fake log-odds.
        c: Inverse strength of the slope's penalty (per unit of class weight).

    Returns:
        ``[a, b]`` with ``a > 0`` (a list: it is stored in JSON and checkpoints); None
        when a class is missing, the scores are constant or not finite, or they do not
        rise with the fake label (a calibration would invert the verdicts).

    Raises:
        ValueError: Labels other than 0/1, or labels and scores of different lengths.

    Example:
        >>> a, b = platt_calibration([0, 0, 0, 1, 1, 1], [4.0, 5.0, 6.0, 6.5, 7.5, 8.5])
        >>> round(-b / a, 2)  # the calibrated 0.5 lies between the classes
        6.25
    """
    y_int = np.asarray(labels).astype(int).reshape(-1)
    if y_int.min(initial=1) == y_int.max(initial=0):
        return None  # one class: nothing to calibrate against
    y_int, s = _check_binary(y_int, scores)
    if not np.isfinite(s).all() or s.std() == 0:
        return None
    y, n_fake = y_int.astype(float), float(y_int.sum())
    mu, sd = s.mean(), s.std()
    x = (s - mu) / sd
    k = np.where(y == 1, y.size / (2 * n_fake), y.size / (2 * (y.size - n_fake)))
    theta = np.zeros(2)  # slope and intercept on the standardised scale

    def objective(t: np.ndarray) -> float:
        z = t[0] * x + t[1]
        return 0.5 * t[0] ** 2 + c * float(np.sum(k * (np.logaddexp(0, z) - y * z)))

    for _ in range(100):
        p = probability(theta[0] * x + theta[1])
        r, w = c * k * (p - y), c * k * p * (1 - p)
        grad = np.array([theta[0] + np.sum(r * x), np.sum(r)])
        hess = np.array([[1 + np.sum(w * x * x), np.sum(w * x)], [np.sum(w * x), np.sum(w)]])
        step, f0 = np.linalg.solve(hess, grad), objective(theta)
        while objective(theta - step) > f0 and np.abs(step).max() > 1e-12:
            step = step / 2  # damped Newton: never uphill
        theta = theta - step
        if np.abs(step).max() < 1e-10:
            break
    a = theta[0] / sd
    return [float(a), float(theta[1] - a * mu)] if a > 0 else None
