"""gpwave.fitting: closed-form models are fitted on every frame, in chunks."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
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


def _bf16_steps(precision: str, steps: int = 3) -> tuple[list[float], torch.Tensor]:
    """A tiny conv net trained a few Adam steps on fixed data under ``step_autocast``."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.PReLU(), torch.nn.BatchNorm2d(8),
        torch.nn.Flatten(), torch.nn.Linear(8 * 12 * 10, 2),
    )  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(16, 1, 12, 10, generator=g), torch.randint(0, 2, (16,), generator=g)
    losses = []
    for _ in range(steps):
        with fitting.step_autocast("cpu", amp=True, precision=precision):
            z = net(x)
            loss = torch.nn.functional.cross_entropy(z.float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses, torch.cat([p.detach().flatten() for p in net.parameters()])


def test_bf16_step_is_close_to_float32_and_deterministic():
    """bfloat16 keeps 8 bits of mantissa: the loss agrees with float32 to ~1e-2 relative."""
    loss32, w32 = _bf16_steps("fp32")
    loss16, w16 = _bf16_steps("bf16")
    assert all(abs(a - b) <= 2e-2 * abs(a) for a, b in zip(loss32, loss16, strict=True))
    assert loss16 != loss32  # bf16 really ran: not the float32 numbers
    assert w16.dtype == torch.float32  # weights stay float32
    # Adam moves each weight by at most ~lr per step, so they stay within 3 steps of lr
    assert float((w16 - w32).abs().max()) <= 3 * 1e-3 + 1e-6
    again, w_again = _bf16_steps("bf16")
    assert again == loss16 and torch.equal(w_again, w16)  # deterministic


@pytest.mark.filterwarnings("ignore:CUDA is not available")
def test_step_autocast_picks_the_dtype_per_device():
    on = fitting.step_autocast("cpu", amp=False, precision="bf16")
    assert on.fast_dtype == torch.bfloat16 and on._enabled
    assert not fitting.step_autocast("cpu", amp=True, precision="fp32")._enabled
    cuda = fitting.step_autocast("cuda:0", amp=True, precision="bf16")
    assert cuda.fast_dtype == torch.float16 and cuda.device == "cuda"
