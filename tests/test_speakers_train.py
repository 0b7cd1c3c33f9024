"""speakers-train in the download registry: manifest, fetch from a mirror, md5 refusal.

The mirror is ``../shared/speakers-train`` next to the checkout, else
``$GPWAVE_SPEAKERS_TRAIN_MIRROR``; the tests skip when neither exists.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from gpwave import download, transfer
from gpwave.errors import ChecksumError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_train() -> Path:
    """The read-only mirror of speakers-train (with MANIFEST.tsv); skips if absent."""
    for c in (REPO.parent / "shared" / "speakers-train",
              os.environ.get("GPWAVE_SPEAKERS_TRAIN_MIRROR")):  # fmt: skip
        if c and (Path(c) / "MANIFEST.tsv").is_file():
            return Path(c)
    pytest.skip("../shared/speakers-train is not next to this checkout")


def test_registry_entry_is_for_training_with_its_own_mirror_variable():
    entry = download.registry()["speakers-train"]
    assert entry["mirror_env"] == "GPWAVE_SPEAKERS_TRAIN_MIRROR"
    assert entry["folder"] == "speakers-train"
    assert not entry.get("test_only")
    assert download.only_for_testing("/x/speakers-train/umelgan") is None


def test_packaged_manifest_pins_upstream_urls_to_commits():
    df = download.manifest("speakers-train")
    assert len(df) == 458
    assert df.md5.str.fullmatch(r"[0-9a-f]{32}").all()
    assert df.file.is_unique
    for url, commit, repo in df[["source_url", "source_commit", "source_repo"]].to_numpy():
        assert re.fullmatch(r"[0-9a-f]{40}", commit)
        assert url.startswith(f"https://raw.githubusercontent.com/{repo}/{commit}/")
    assert {"speaker", "sample_rate", "utterance", "conversion"} <= set(df.columns)
    assert set(df.file.str.split("/").str[0]) == {
        "umelgan", "univnet", "wavehax", "singgan", "fwgan", "qppwg", "usfgan",
    }  # fmt: skip


def test_packaged_manifest_is_the_shared_one(shared_train):
    ours = download.manifest("speakers-train")
    assert ours.equals(download.read_manifest(shared_train / "MANIFEST.tsv"))


def _small(df: pd.DataFrame) -> pd.DataFrame:
    """Four rows: a real and a fake of one tree, and a converted (float upstream) file."""
    conv = df[df.conversion != ""].iloc[:1]
    plain = df[df.file.str.startswith("usfgan/")].iloc[[0, -1]]
    return pd.concat([plain, conv])


def test_fetch_from_mirror_env_verifies_md5(tmp_path, shared_train, monkeypatch):
    monkeypatch.setenv("GPWAVE_SPEAKERS_TRAIN_MIRROR", str(shared_train))
    monkeypatch.setattr(download, "manifest", lambda name: _small(download.read_manifest(
        shared_train / "MANIFEST.tsv")))  # fmt: skip
    root = download.fetch("speakers-train", dest=tmp_path, progress=False)
    assert root == tmp_path / "speakers-train"
    for file, md5 in _small(download.read_manifest(shared_train / "MANIFEST.tsv"))[
        ["file", "md5"]
    ].to_numpy():
        assert transfer.file_hash(root / file) == md5
    assert (root / "MANIFEST.tsv").read_bytes() == (shared_train / "MANIFEST.tsv").read_bytes()


def test_a_corrupted_mirror_copy_is_refused(tmp_path, shared_train):
    rows = _small(download.read_manifest(shared_train / "MANIFEST.tsv"))
    mirror = tmp_path / "mirror"
    for f in rows.file:
        (mirror / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared_train / f, mirror / f)
    bad = mirror / rows.file.iloc[0]
    data = bytearray(bad.read_bytes())
    data[-100] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=re.escape(rows.file.iloc[0])):
        download.fetch_manifest(rows, tmp_path / "out", mirror=mirror, progress=False)
    assert not (tmp_path / "out" / rows.file.iloc[0]).exists()
    assert (tmp_path / "out" / rows.file.iloc[1]).is_file()  # the good files are kept


def test_cli_fetch_speakers_train_is_an_option():
    from typing import get_args

    from gpwave.constants import DatasetName

    assert "speakers-train" in get_args(DatasetName)
