"""gpwave.metrics against references: scikit-learn's ROC, scipy's binomial test, hand values.

As the transforms are tested against PyWavelets, the EER is tested against the EER read
off scikit-learn's ``roc_curve`` (root of FNR - FPR on its interpolated curve), and the
paired test against ``scipy.stats.binomtest``.
"""

import numpy as np
import pytest
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from scipy.special import logit
from scipy.stats import binomtest
from sklearn.metrics import roc_curve

from gpwave import metrics


def sklearn_eer(y, s):
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    return brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)


def _sk_eer(y, s):
    fpr, tpr, _ = roc_curve(y, s)
    return brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)


def test_eer_perfect_separation():
    assert metrics.eer([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 0.0


def test_eer_perfectly_wrong():
    assert metrics.eer([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == pytest.approx(1.0)


def test_eer_identical_distributions():
    y = np.r_[np.zeros(50), np.ones(50)]
    assert metrics.eer(y, np.full(100, 0.3)) == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    s = rng.random(200_000)
    y = rng.integers(0, 2, 200_000)
    assert metrics.eer(y, s) == pytest.approx(0.5, abs=0.01)


def test_argmax_eer_hand_computed():
    # 4 real (2 flagged: FPR a = 1/2), 4 fake (1 flagged: TPR b = 1/4); a + b < 1:
    # EER = a + (1 - a)(1 - a - b) / (2 - a - b) = 1/2 + (1/2)(1/4)/(5/4) = 0.6
    # (scores are log-odds: scipy's logit of the probabilities; the argmax is log-odds >= 0)
    y = [0, 0, 0, 0, 1, 1, 1, 1]
    s = logit([0.9, 0.6, 0.1, 0.2, 0.7, 0.4, 0.3, 0.2])
    assert metrics.argmax_eer(y, s) == pytest.approx(0.6)
    # a = 1/4, b = 3/4: a + b = 1, EER = a / (a + b) = 1/4
    s = logit([0.6, 0.1, 0.2, 0.3, 0.7, 0.8, 0.9, 0.45])
    assert metrics.argmax_eer(y, s) == pytest.approx(0.25)
    # perfectly ranked but badly calibrated scores: score EER 0, argmax EER 1/2
    s = logit([0.6, 0.7, 0.8, 0.9, 0.95, 0.96, 0.97, 0.98])
    assert metrics.eer(y, s) == 0.0 and metrics.argmax_eer(y, s) == pytest.approx(0.5)


def test_eer_known_roc():
    # Scores: reals at 1, 2, 3, 4; fakes at 2.5, 3.5, 5, 6 -> ROC steps cross FPR=FNR=0.25
    y = [0, 0, 0, 0, 1, 1, 1, 1]
    s = [1, 2, 3, 4, 2.5, 3.5, 5, 6]
    assert metrics.eer(y, s) == pytest.approx(0.25)
    # Ties between classes make a diagonal ROC segment: interpolated, not a step
    y2 = [0, 0, 1, 1]
    s2 = [0.0, 0.5, 0.5, 1.0]
    fpr, tpr = metrics.roc(y2, s2)
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 1, 1])
    # FNR = 1 - TPR falls from 0.5 to 0 while FPR rises from 0 to 0.5: they meet at 0.25
    assert metrics.eer(y2, s2) == pytest.approx(0.25)


@pytest.mark.parametrize("seed", range(5))
def test_eer_matches_sklearn_roc(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 400))
    y = rng.integers(0, 2, n)
    s = rng.normal(size=n) + y * rng.uniform(0, 2)
    s = np.round(s, 1)  # ties
    fpr, tpr = metrics.roc(y, s)
    ref_fpr, ref_tpr, _ = roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)
    assert metrics.eer(y, s) == pytest.approx(sklearn_eer(y, s), abs=1e-9)


def test_eer_needs_both_classes():
    with pytest.raises(ValueError, match="both classes"):
        metrics.eer([1, 1], [0.2, 0.3])


def test_accuracy_at_log_odds_zero_is_accuracy_at_probability_half():
    assert metrics.accuracy([0, 1, 1, 0], logit([0.2, 0.7, 0.4, 0.5])) == 0.5
    assert metrics.accuracy([0, 1, 1, 0], [0.2, 0.7, 0.4, 0.5], threshold=0.5) == 0.5


def test_probability_is_the_logistic_function():
    s = np.array([-700.0, -3.0, 0.0, 2.0, 40.0])
    np.testing.assert_allclose(metrics.probability(s), 1 / (1 + np.exp(-s)), rtol=1e-12)


def test_bootstrap_resamples_utterances_not_frames():
    rng = np.random.default_rng(1)
    # 20 utterances, 30 frames each; each utterance's frames share one score.
    utt = np.repeat(np.arange(20), 30)
    y = (utt % 2).astype(int)
    base = rng.normal(size=20) + 0.8 * (np.arange(20) % 2)
    s = base[utt]
    lo, hi = metrics.eer_ci(y, s, utt, n_boot=400)
    assert lo <= metrics.eer(y, s) <= hi
    # Treating frames as independent understates the spread; groups must give a wider CI.
    lo_f, hi_f = metrics.eer_ci(y, s, np.arange(len(y)), n_boot=400)
    assert hi - lo > 2 * (hi_f - lo_f)


def test_paired_eer_difference_point_estimate_and_paired_interval():
    rng = np.random.default_rng(0)
    n_utts, per = 40, 3
    groups = np.repeat([f"u{i}" for i in range(n_utts)], per)
    y = np.repeat(rng.integers(0, 2, n_utts), per)
    shared = rng.normal(size=y.size)  # both detectors see the same hard frames
    a = y * 1.5 + shared + 0.1 * rng.normal(size=y.size)
    b = y * 1.0 + shared + 0.1 * rng.normal(size=y.size)
    diff, low, high = metrics.paired_eer_difference(y, a, b, groups, n_boot=300, seed=1)
    assert diff == pytest.approx(_sk_eer(y, a) - _sk_eer(y, b), abs=1e-6)
    assert low <= diff <= high and high < 0  # A is reliably better
    # pairing: the interval of the difference is narrower than the two EERs' own spread
    lo_a, hi_a = metrics.eer_ci(y, a, groups, n_boot=300, seed=1)
    lo_b, hi_b = metrics.eer_ci(y, b, groups, n_boot=300, seed=1)
    assert high - low < (hi_a - lo_a) + (hi_b - lo_b)
    same = metrics.paired_eer_difference(y, a, a, groups, n_boot=50)
    assert same == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="shape"):
        metrics.paired_eer_difference(y, a, b[:-1], groups)


def test_group_bootstrap_draws_whole_groups_with_both_classes():
    y = np.array([0, 0, 1, 1, 1, 0])
    groups = ["a", "a", "b", "b", "b", "c"]
    drawn = metrics.group_bootstrap(y, groups, lambda i: tuple(sorted(i)), n_boot=200, seed=3)
    members = {"a": (0, 1), "b": (2, 3, 4), "c": (5,)}
    for idx in drawn:
        assert 0 < y[list(idx)].sum() < len(idx)  # both classes in every kept resample
        counts = {g: sum(i in m for i in idx) / len(m) for g, m in members.items()}
        assert all(c == int(c) for c in counts.values())  # groups come whole
        assert sum(counts.values()) == 3  # as many groups as there are
    # resamples without group b (the only fakes) are skipped: (2/3)^3 of them on average
    assert 200 * (1 - (2 / 3) ** 3) * 0.8 < len(drawn) < 200


def test_percentile_interval_matches_numpy_quantiles():
    v = np.random.default_rng(0).normal(size=501)
    low, high = metrics.percentile_interval(v, 0.9)
    assert (low, high) == (np.quantile(v, 0.05), np.quantile(v, 0.95))
    assert np.isnan(metrics.percentile_interval([], 0.95)).all()


def test_eer_ci_of_a_separable_set_is_zero_and_of_one_group_is_nan():
    y, s = [0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8]
    assert metrics.eer_ci(y, s, ["u", "u", "v", "v"], n_boot=30) == (0.0, 0.0)
    # one class per group, and a single group of each: many resamples hold one class
    low, high = metrics.eer_ci([0, 1], [0.1, 0.9], ["r", "f"], n_boot=30)
    assert (low, high) == (0.0, 0.0)
    assert np.isnan(metrics.eer_ci([0, 1], [0.1, 0.9], ["r", "f"], n_boot=0)).all()


@pytest.mark.parametrize("seed", range(6))
def test_mcnemar_matches_scipy_binomial_test(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(10, 120))
    y = rng.integers(0, 2, n)
    a = rng.normal(size=n) + 2 * (y - 0.5) * rng.uniform(0, 2)
    b = rng.normal(size=n) + 2 * (y - 0.5) * rng.uniform(0, 2)
    only_a, only_b, p = metrics.mcnemar_test(y, a, b)
    ok_a, ok_b = (a >= 0) == y, (b >= 0) == y
    assert only_a == int((ok_a & ~ok_b).sum()) and only_b == int((ok_b & ~ok_a).sum())
    if only_a + only_b:
        ref = binomtest(min(only_a, only_b), only_a + only_b, 0.5).pvalue
        assert p == pytest.approx(ref, rel=1e-12)
    else:
        assert p == 1.0


def test_mcnemar_hand_computed():
    # A right on 5 frames B gets wrong, B never right where A is wrong: p = 2 / 2^5
    y = np.ones(8, int)
    a = np.r_[np.ones(5), np.ones(3)]
    b = np.r_[-np.ones(5), np.ones(3)]
    assert metrics.mcnemar_test(y, a, b) == (5, 0, 0.0625)
    assert metrics.mcnemar_test(y, a, a) == (0, 0, 1.0)


def _loop_bootstrap(y, s, groups, n_boot, seed):
    """The resampling written out: draw groups one resample at a time, skip one-class ones."""
    names = sorted(set(groups))
    members = [np.nonzero(np.asarray(groups) == g)[0] for g in names]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_boot):
        idx = np.concatenate([members[g] for g in rng.integers(0, len(names), len(names))])
        if 0 < y[idx].sum() < len(idx):
            out.append([metrics.eer(y[idx], x[idx]) for x in s])
    return np.array(out).T


@pytest.mark.parametrize("seed", range(4))
def test_vectorised_bootstrap_gives_the_loops_resamples_and_eers_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(30, 400))
    groups = [f"u{g}" for g in rng.integers(0, int(rng.integers(2, 40)), n)]
    y = rng.integers(0, 2, n)
    # rounded scores: ties within and across groups, and between the classes
    s = [np.round(rng.normal(y * 0.7, 1.0), 1), np.round(rng.normal(y * 1.5, 1.0), 0)]
    ref = _loop_bootstrap(y, s, groups, 300, seed)
    new = metrics.bootstrap_eers(y, s, groups, 300, seed)
    assert new.shape == ref.shape and new.shape[1] > 200
    assert (new == ref).all()  # same draws, same resamples, same floats
    a = (1 - 0.95) / 2  # as percentile_interval computes it (not exactly 0.025)
    ref_ci = (np.quantile(ref[0], a), np.quantile(ref[0], 1 - a))
    assert metrics.eer_ci(y, s[0], groups, 300, seed=seed) == ref_ci
    _, low, high = metrics.paired_eer_difference(y, s[0], s[1], groups, 300, seed=seed)
    assert (low, high) == (np.quantile(ref[0] - ref[1], a), np.quantile(ref[0] - ref[1], 1 - a))


def test_vectorised_bootstrap_in_small_blocks_and_in_torch_agrees(monkeypatch):
    """Blocks of resamples (memory bound) and torch (the CUDA path, run on the CPU here)."""
    pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 500)
    s = rng.normal(y, 1.0)
    groups = rng.integers(0, 60, 500)
    whole = metrics.bootstrap_eers(y, [s], groups, 200, 3)
    monkeypatch.setattr(metrics, "BOOT_CHUNK", 500 * 7)  # 7 resamples per block
    assert (metrics.bootstrap_eers(y, [s], groups, 200, 3) == whole).all()
    _, gid = np.unique(groups.astype(str), return_inverse=True)
    order = np.argsort(-s, kind="mergesort")
    last = np.r_[np.nonzero(np.diff(s[order]))[0], len(s) - 1]
    counts = metrics.resample_counts(60, 200, 3).astype(float)
    on_torch = metrics._eers_torch(counts, gid[order], y[order].astype(float), last, "cpu")
    np.testing.assert_allclose(on_torch, whole[0], rtol=0, atol=1e-12)


def test_resample_counts_are_the_loops_draws():
    rng = np.random.default_rng(5)
    draws = [rng.integers(0, 9, 9) for _ in range(50)]
    ref = np.array([np.bincount(d, minlength=9) for d in draws])
    assert (metrics.resample_counts(9, 50, 5) == ref).all()


def test_vectorised_bootstrap_ci_covers_like_scipys_percentile_bootstrap():
    """Frames as groups: scipy.stats.bootstrap's percentile CI, up to resampling noise."""
    from scipy.stats import bootstrap

    rng = np.random.default_rng(11)
    y = np.repeat([0, 1], 150)
    s = rng.normal(y * 1.2, 1.0)
    low, high = metrics.eer_ci(y, s, np.arange(len(y)), n_boot=2000, seed=1)
    ref = bootstrap(
        (np.arange(len(y)),),
        lambda i: metrics.eer(y[i], s[i]) if 0 < y[i].sum() < len(i) else np.nan,
        n_resamples=2000,
        method="percentile",
        vectorized=False,
        random_state=2,
    )
    assert low == pytest.approx(ref.confidence_interval.low, abs=0.015)
    assert high == pytest.approx(ref.confidence_interval.high, abs=0.015)


def test_mean_t_interval_matches_scipy():
    from scipy import stats

    x = [2.0, -1.0, 4.5, 0.5]
    mean, lo, hi = metrics.mean_t_interval(x, level=0.9)
    ref = stats.t.interval(0.9, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert mean == pytest.approx(1.5)
    assert (lo, hi) == pytest.approx(ref)
    assert np.isnan(metrics.mean_t_interval([3.0])[1])


def _standardised_sklearn_fit(y, s, c=1.0):
    from sklearn.linear_model import LogisticRegression

    x = (s - s.mean()) / s.std()
    fit = LogisticRegression(C=c, class_weight="balanced", tol=1e-12, max_iter=10_000)
    fit.fit(x[:, None], y)
    a = fit.coef_[0, 0] / s.std()
    return a, fit.intercept_[0] - a * s.mean()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_platt_calibration_matches_sklearns_balanced_logistic_regression(seed):
    rng = np.random.default_rng(seed)
    n_real, n_fake = rng.integers(20, 400, size=2)
    s = np.r_[rng.normal(3, 2, n_real), rng.normal(6, 1.5, n_fake)]
    y = np.r_[np.zeros(n_real), np.ones(n_fake)]
    for c in (1.0, 0.05):
        np.testing.assert_allclose(metrics.platt_calibration(y, s, c),
                                   _standardised_sklearn_fit(y, s, c), rtol=1e-6)  # fmt: skip


def test_platt_calibration_recovers_the_gaussian_posterior_and_ignores_the_class_ratio():
    # equal-variance Gaussians N(5, 1) real and N(7, 1) fake, equal weights: the log-odds
    # of the posterior are 2 s - 12, whatever the class counts
    rng = np.random.default_rng(0)
    s = np.r_[rng.normal(5, 1, 60_000), rng.normal(7, 1, 15_000)]
    y = np.r_[np.zeros(60_000), np.ones(15_000)]
    a, b = metrics.platt_calibration(y, s)
    assert a == pytest.approx(2.0, rel=0.03) and b == pytest.approx(-12.0, rel=0.03)


def test_platt_calibration_of_separable_scores_is_finite_and_splits_the_classes():
    s = np.array([4.0, 5.0, 6.0, 6.5, 7.5, 8.5])
    a, b = metrics.platt_calibration([0, 0, 0, 1, 1, 1], s)
    assert np.isfinite([a, b]).all() and 6.0 < -b / a < 6.5


@pytest.mark.parametrize(
    "labels,scores",
    [([0, 0, 0], [1.0, 2.0, 3.0]), ([0, 1, 0, 1], [1.0, 1.0, 1.0, 1.0]),
     ([0, 0, 1, 1], [4.0, 3.0, 2.0, 1.0]), ([0, 1], [0.0, float("nan")])],
)  # fmt: skip
def test_platt_calibration_refuses_what_it_cannot_calibrate(labels, scores):
    # one class, constant scores, scores that fall with the label, non-finite scores
    assert metrics.platt_calibration(labels, scores) is None


def test_platt_calibration_shares_the_eers_input_checks():
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.platt_calibration([0, 1, 1], [0.0, 1.0])
    with pytest.raises(ValueError, match="0 \\(real\\) or 1"):
        metrics.platt_calibration([0, 2], [0.0, 1.0])
