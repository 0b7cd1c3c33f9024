"""gpwave.dist: the process group of a multi-process run."""

from __future__ import annotations

from gpwave import dist


def test_process_group_gets_a_long_timeout(monkeypatch):
    """Rank 0 decodes the store and bootstraps alone: NCCL's 10-minute default would fire."""
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
