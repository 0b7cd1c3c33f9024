"""gpwave.dist: the process group of a multi-process run."""

from __future__ import annotations

from gpwave import dist


def test_process_group_gets_a_long_timeout(monkeypatch):
    """Rank 0 decodes the store alone first: NCCL's 10-minute default would fire."""
    from datetime import timedelta

    seen = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(dist.tdist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist.tdist, "init_process_group", lambda backend, **kw: seen.update(kw))
    monkeypatch.setattr(dist.tdist, "get_rank", lambda: 0)
    monkeypatch.setattr(dist.tdist, "get_world_size", lambda: 2)
    dist.setup("cuda")
    assert seen["timeout"] >= timedelta(hours=1)
    monkeypatch.setenv("GPWAVE_DIST_TIMEOUT", "90")
    dist.setup("cpu")
    assert seen["timeout"] == timedelta(seconds=90)


def test_all_gather_returns_every_ranks_object_in_rank_order(monkeypatch):
    def fake_all_gather_object(out, obj):  # rank 1 of 3: the others sent their rank's list
        out[:] = [[0.0], obj, [2.0, 2.5]]

    monkeypatch.setattr(dist.tdist, "all_gather_object", fake_all_gather_object)
    assert dist.all_gather([1.0], dist.Dist(rank=1, world=3)) == [[0.0], [1.0], [2.0, 2.5]]
    assert dist.all_gather("alone", dist.Dist()) == ["alone"]


def test_broadcast_module_overwrites_parameters_and_buffers_in_place(monkeypatch):
    """Every tensor goes through broadcast (the lead's values come back), channels-last too."""
    import torch

    lead = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3))
    lead.to(memory_format=torch.channels_last)
    torch.manual_seed(1)
    follower = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3))
    follower.to(memory_format=torch.channels_last)
    follower[1].running_mean.fill_(5.0)
    sources = iter([*lead.parameters(), *lead.buffers()])

    def fake_broadcast(t, src):
        assert src == 0 and t.is_contiguous()
        t.copy_(next(sources).detach().reshape(t.shape))

    monkeypatch.setattr(dist.tdist, "broadcast", fake_broadcast)
    dist.broadcast_module(follower, dist.Dist(rank=1, world=2))
    for a, b in zip(lead.state_dict().values(), follower.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert follower[0].weight.is_contiguous(memory_format=torch.channels_last)
