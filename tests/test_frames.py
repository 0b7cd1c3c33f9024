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
