"""gpwave.fitting: closed-form models are fitted on every frame, in chunks."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from gpwave import fitting


def test_gmm_features_are_gathered_in_chunks():
    """cache_features=False at full scale: never all training frames' features at once."""

    sizes, fitted = [], {}

    class Frames:
        def __len__(self):
            return 600

        def features(self, idx):
            sizes.append(len(idx))
            return torch.full((len(idx), 1, 20, 3), float(idx[0])), torch.as_tensor(idx % 2)

    det = SimpleNamespace(
        model=SimpleNamespace(fit=lambda f, y, seed: fitted.update(f=f, y=y, seed=seed))
    )
    fitting.fit_closed_form(det, Frames(), seed=3)
    assert max(sizes) <= fitting.CHUNK and sum(sizes) == 600
    assert fitted["f"].shape == (600, 1, 20, 3) and fitted["seed"] == 3
    assert fitted["y"].tolist() == [i % 2 for i in range(600)]
