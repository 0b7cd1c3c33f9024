"""gpwave.frames: the protocol's store, batches, loaders and augmentation of training frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _detector_data import base_config, make_detector_tree

from gpwave import config, dist, frames
from gpwave.store import select_frames

GAIN = {"kind": "gain", "strengths": [-6], "p": 1.0}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = make_detector_tree(tmp_path_factory.mktemp("det") / "data")
    return root, root.parent / "store"


def cfg_of(tree, **kw):
    return config.TrainConfig.from_dict(base_config(*tree, **kw))


def test_protocol_store_pins_test_only_sentences_in_every_folder(mini_root, tmp_path):
    # configs/mini.yaml makes every folder but A and B test-only; O-Z re-synthesise
    # LJ050-0029..0033, so those real recordings must be test frames too, and the
    # training split holds only real speech and MelGAN.
    repo = Path(__file__).resolve().parents[1]
    store = frames.protocol_store(repo / "configs" / "mini.yaml", mini_root, tmp_path / "store")
    index = store.index
    shared = [f"LJ050-00{k}" for k in range(29, 34)]
    real_shared = index[(index["folder"] == "A_ljspeech") & index["utterance"].isin(shared)]
    assert len(real_shared) > 0
    assert set(real_shared["split"]) == {"test"}
    assert set(index.loc[index["split"] != "test", "folder"]) == {"A_ljspeech", "B_melgan"}
    assert index.groupby("utterance")["split"].nunique().max() == 1


def test_batch_loader_yields_each_batch_of_stored_int16_frames_in_order(tree, tmp_path):
    """Rank 1's share of each global batch, as the files hold them (16-bit PCM samples)."""
    import soundfile as sf

    cfg = cfg_of(tree)
    store = frames.protocol_store(cfg.to_dict(), cfg.data_dir, cfg.store_dir)
    rows = select_frames(store, "train", ["melgan"])
    labels = torch.as_tensor(store.index["label"].to_numpy()[rows])
    batches = frames.batch_positions(len(rows), 8, seed=2, epoch=1, d=dist.Dist(rank=1, world=2))
    rng = torch.get_rng_state()
    got = list(frames.batch_loader(store, rows, labels, batches, "cpu", workers=2))
    assert torch.equal(torch.get_rng_state(), rng)  # dropout's stream is left alone
    assert len(got) == len(batches) > 2
    n = store.frame_length
    for (x, y), idx in zip(got, batches, strict=True):
        assert x.dtype == torch.int16 and x.shape == (len(idx), n)
        for k, r in enumerate(store.index.iloc[rows[idx]].itertuples()):
            ref, _ = sf.read(r.file, start=r.offset, stop=r.offset + n, dtype="int16")
            np.testing.assert_array_equal(x[k].numpy(), ref)
            assert y[k] == r.label
    xf, _ = frames.to_device(got[0][0], got[0][1], "cpu")
    assert xf.dtype == torch.float32
    np.testing.assert_array_equal(xf.numpy(), got[0][0].numpy() / 32768.0)


def test_augment_batch_applies_perturb_like_numpy_and_is_deterministic():
    x = np.random.default_rng(1).standard_normal((6, 2000)).astype(np.float32) * 0.1
    y = frames.augment_batch(x, [GAIN], 8000, seed=0, epoch=0, step=0)
    np.testing.assert_allclose(y, x * 10 ** (-6 / 20), rtol=1e-6)  # numpy, not perturb
    spec = [{"kind": "white-noise", "strengths": [10.0, 0.0], "p": 0.5}]
    a = frames.augment_batch(x, spec, 8000, seed=3, epoch=1, step=2)
    b = frames.augment_batch(x, spec, 8000, seed=3, epoch=1, step=2)
    c = frames.augment_batch(x, spec, 8000, seed=3, epoch=1, step=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    hit = ~np.all(a == x, axis=1)
    assert 0 < hit.sum() < len(x)  # p = 0.5 leaves some frames clean
    snr = 10 * np.log10((x[hit] ** 2).sum(1) / ((a[hit] - x[hit]) ** 2).sum(1))
    assert np.all(np.isclose(snr, 10, atol=1e-3) | np.isclose(snr, 0, atol=1e-3))


def test_augment_keeps_the_frame_length_of_a_shift():
    x = np.random.default_rng(2).standard_normal((2, 1000)).astype(np.float32)
    y = frames.augment_batch(x, [{"kind": "shift", "strengths": [0.01], "p": 1.0}], 10000, 0, 0, 0)
    np.testing.assert_array_equal(y[:, :900], x[:, 100:])
    np.testing.assert_array_equal(y[:, 900:], 0)


def _detector(cfg):
    from gpwave.models import Detector

    return Detector(cfg.feature_config, cfg.model, round(cfg.seconds * cfg.sample_rate))


def _packets3(tree, n: int):
    """Config (level-3 packets), store and the first ``n`` MelGAN training rows of ``tree``."""
    cfg = cfg_of(tree, feature={"kind": "packets", "level": 3})
    store = frames.protocol_store(cfg.to_dict(), cfg.data_dir, cfg.store_dir)
    return cfg, store, select_frames(store, "train", ["melgan"])[:n]


def test_feature_cache_misses_then_hits_with_the_features_of_the_frames(tree, monkeypatch):
    """The cached raw features are the detector's own, per frame; a second call reads them."""
    cfg, store, rows = _packets3(tree, 10)
    det = _detector(cfg)
    path = frames.feature_cache_path(det, store, rows, "cpu")
    path.unlink(missing_ok=True)
    first = frames.cached_raw_features(det, store, rows, "cpu", chunk=4)
    assert path.is_file() and not [p for p in path.parent.iterdir() if p.name.startswith(".")]
    with torch.no_grad():
        ref = torch.stack([det.raw_features(torch.from_numpy(store.read([r])))[0] for r in rows])
    # log-magnitudes: one frame alone vs in a batch of 4 round differently near eps
    torch.testing.assert_close(first, ref, rtol=1e-3, atol=1e-2)
    calls = []
    monkeypatch.setattr(det, "raw_features", lambda x: calls.append(x) or x)
    again = frames.cached_raw_features(det, store, rows, "cpu")
    assert calls == [] and torch.equal(again, first)  # a hit computes nothing


def test_feature_cache_key_changes_with_feature_config_rows_and_level_norm(tree):
    cfg, store, rows = _packets3(tree, 10)
    det = _detector(cfg)
    key = frames.feature_cache_path(det, store, rows, "cpu")
    assert frames.feature_cache_path(_detector(cfg), store, rows.copy(), "cpu") == key
    other = _detector(cfg_of(tree, feature={"kind": "packets", "level": 4}))
    assert frames.feature_cache_path(other, store, rows, "cpu") != key
    assert frames.feature_cache_path(det, store, rows[::-1], "cpu") != key
    assert frames.feature_cache_path(det, store, rows[:9], "cpu") != key
    det.level_norm = not det.level_norm
    assert frames.feature_cache_path(det, store, rows, "cpu") != key
    gmm = _detector(cfg_of(tree, feature={"kind": "packets", "level": 3}, model="gmm"))
    assert frames.feature_cache_path(gmm, store, rows, "cpu") == key  # model: shared


def test_feature_cache_recomputes_a_damaged_file(tree):
    """A truncated file (a writer killed mid-way would leave only its temporary) is redone."""
    cfg, store, rows = _packets3(tree, 6)
    det = _detector(cfg)
    good = frames.cached_raw_features(det, store, rows, "cpu")
    path = frames.feature_cache_path(det, store, rows, "cpu")
    path.write_bytes(path.read_bytes()[:100])
    assert torch.equal(frames.cached_raw_features(det, store, rows, "cpu"), good)
    assert np.load(path).shape == tuple(good.shape)


def test_fit_normalizer_and_frames_from_the_cache_equal_the_streamed_ones(tree):
    """The cache changes no number: the same normaliser and the same training features."""
    cfg, store, rows = _packets3(tree, 70)
    streamed, cached = _detector(cfg), _detector(cfg)
    frames.fit_normalizer(streamed, store, rows, "cpu")
    frames.fit_normalizer(cached, store, rows, "cpu", cache=True)
    for name, buf in streamed.normalizer.state_dict().items():
        assert torch.equal(cached.normalizer.state_dict()[name], buf), name
    data = frames.Frames(store, rows, cached, "cpu", cache=True)
    idx = np.arange(len(rows))
    with torch.no_grad():
        ref = streamed.features(torch.from_numpy(store.read(rows)))
    torch.testing.assert_close(data.features(idx)[0], ref, rtol=0, atol=1e-6)
