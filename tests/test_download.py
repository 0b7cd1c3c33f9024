from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from _http import FileServer
from _signals import SR, chirp, noise, tone

from gpwave import data, download, transfer
from gpwave.errors import ChecksumError, DataError
from gpwave.store import prepare_store


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    monkeypatch.setattr(transfer, "BACKOFF", 0.0)
    monkeypatch.setattr(transfer, "TIMEOUT", 10.0)
    monkeypatch.delenv("GPWAVE_DATA_MIRROR", raising=False)
    monkeypatch.delenv("GPWAVE_ZENODO_API", raising=False)


def md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def wav_bytes(x: np.ndarray, sr: int = SR, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, subtype=subtype, format="WAV")
    return buf.getvalue()


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, payload in entries.items():
            zf.writestr(name, payload)
    return buf.getvalue()


def tar_bytes(entries: dict[str, bytes], mode: str = "w:bz2", links=()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, payload in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
        for name, target in links:
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return buf.getvalue()


# --- single files -------------------------------------------------------------------------


def test_file_hash_matches_hashlib(tmp_path):
    payload = os.urandom(3 * transfer.CHUNK + 17)
    (tmp_path / "f").write_bytes(payload)
    assert transfer.file_hash(tmp_path / "f") == md5(payload)
    assert transfer.file_hash(tmp_path / "f", "sha256") == hashlib.sha256(payload).hexdigest()


def test_interrupted_download_resumes_with_range(tmp_path):
    payload = os.urandom(1_000_003)
    with FileServer({"/big.zip": payload}) as srv:
        srv.drop_once.add("/big.zip")
        out = transfer.download_file(srv.url("/big.zip"), tmp_path / "big.zip", md5(payload))
        assert out.read_bytes() == payload
        assert srv.requests[0] == ("/big.zip", None)
        path, rng = srv.requests[1]
        assert path == "/big.zip" and rng == f"bytes={len(payload) // 2}-"
    assert not (tmp_path / "big.zip.part").exists()


def test_server_ignoring_range_restarts_and_verifies(tmp_path):
    payload = os.urandom(200_001)
    with FileServer({"/f": payload}) as srv:
        srv.ranges = False
        srv.drop_once.add("/f")
        out = transfer.download_file(srv.url("/f"), tmp_path / "f", md5(payload))
        assert out.read_bytes() == payload and len(srv.requests) == 2


def test_wrong_checksum_is_refused(tmp_path):
    payload = b"x" * 5000
    wrong = "0" * 32
    with FileServer({"/f.wav": payload}) as srv:
        with pytest.raises(ChecksumError) as err:
            transfer.download_file(srv.url("/f.wav"), tmp_path / "f.wav", wrong)
    msg = str(err.value)
    assert "f.wav" in msg and wrong in msg and md5(payload) in msg
    assert not (tmp_path / "f.wav").exists() and not (tmp_path / "f.wav.part").exists()


def test_present_file_with_right_checksum_is_not_fetched(tmp_path):
    payload = b"abc" * 100
    (tmp_path / "f").write_bytes(payload)
    with FileServer({"/f": b"other"}) as srv:
        transfer.download_file(srv.url("/f"), tmp_path / "f", md5(payload))
        assert srv.requests == []


def test_not_found_fails_at_once_and_unreachable_after_retries(tmp_path, monkeypatch):
    with FileServer({}) as srv:
        with pytest.raises(DataError, match="404"):
            transfer.download_file(srv.url("/nope"), tmp_path / "x", "0" * 32)
        assert len(srv.requests) == 1
        dead = srv.url("/x")
    monkeypatch.setattr(transfer, "RETRIES", 2)
    with pytest.raises(DataError, match="2 attempts"):
        transfer.download_file(dead, tmp_path / "x", "0" * 32)


# --- the mini benchmark -------------------------------------------------------------------


def test_packaged_manifest_is_the_shared_one(shared_mini):
    ours = download.mini_manifest()
    theirs = download.read_manifest(shared_mini / "MANIFEST.tsv")
    assert ours.equals(theirs) and len(ours) == 219


def test_fetch_mini_from_mirror_folder(tmp_path, shared_mini, monkeypatch):
    root = download.fetch("mini", dest=tmp_path, mirror=shared_mini, progress=False)
    assert root == tmp_path / "wavefake-mini"
    manifest = download.mini_manifest()
    for rel in manifest.file:
        assert (root / rel).read_bytes() == (shared_mini / rel).read_bytes()
    assert (root / "MANIFEST.tsv").is_file()

    def no_copy(*a, **k):
        raise AssertionError("copied again")

    monkeypatch.setattr(transfer, "_copy_attempt", no_copy)
    monkeypatch.setenv("GPWAVE_DATA_MIRROR", str(shared_mini))
    monkeypatch.setenv("GPWAVE_DATA", str(tmp_path))
    assert download.fetch("mini", progress=False) == root


def test_fetch_models_from_mirror_env(tmp_path, shared_models, monkeypatch):
    ours = download.models_manifest()
    assert ours.equals(download.read_manifest(shared_models / "MANIFEST.tsv"))
    assert ours.source_url.str.contains("eaed30201667c33bc7e15cfb3a3af95d13feaec6").all()
    monkeypatch.setenv("GPWAVE_MODELS_MIRROR", str(shared_models))
    monkeypatch.setenv("GPWAVE_DATA_MIRROR", str(tmp_path / "not-this-one"))
    root = download.fetch("models", dest=tmp_path, progress=False)
    assert root == tmp_path / "models"
    for row in ours.itertuples():
        assert transfer.file_hash(root / row.file) == row.md5


def test_packaged_speakers_manifest_is_the_shared_one(shared_speakers):
    ours = download.speakers_manifest()
    assert ours.equals(download.read_manifest(shared_speakers / "MANIFEST.tsv"))
    assert len(ours) == 80 and set(ours.file.str.split("/").str[0]) == {"vctk", "tts"}
    commit = ours.source_commit.iloc[0]
    assert len(commit) == 40 and (ours.source_commit == commit).all()
    assert all(
        u == f"https://raw.githubusercontent.com/jik876/hifi-gan-demo/{commit}/{p}"
        for u, p in zip(ours.source_url, ours.source_path, strict=True)
    )
    assert set(ours.subtype) == {"PCM_16", "PCM_32"}
    assert download.registry()["speakers"]["test_only"] is True


def test_fetch_speakers_from_mirror_env_and_resume(tmp_path, shared_speakers, monkeypatch):
    monkeypatch.setenv("GPWAVE_SPEAKERS_MIRROR", str(shared_speakers))
    monkeypatch.setenv("GPWAVE_DATA_MIRROR", str(tmp_path / "not-this-one"))
    monkeypatch.setenv("GPWAVE_DATA", str(tmp_path))
    root = download.fetch("speakers", progress=False)
    assert root == tmp_path / "speakers-tts-mini"
    ours = download.speakers_manifest()
    for row in ours.itertuples():
        assert md5((root / row.file).read_bytes()) == row.md5
    assert (root / "MANIFEST.tsv").read_bytes() == (shared_speakers / "MANIFEST.tsv").read_bytes()
    assert sorted(p.name for p in root.iterdir()) == ["MANIFEST.tsv", "tts", "vctk"]
    (root / ours.file[0]).unlink()  # interrupted: only the missing file is copied again
    copied = []
    real = transfer._copy_attempt
    monkeypatch.setattr(transfer, "_copy_attempt", lambda s, p: copied.append(s) or real(s, p))
    assert download.fetch("speakers", progress=False) == root
    assert copied == [shared_speakers / ours.file[0]]


def test_fetch_speakers_refuses_a_corrupt_mirror_file_and_a_wrong_md5(tmp_path, shared_speakers):
    mirror = tmp_path / "mirror"
    shutil.copytree(shared_speakers, mirror)
    bad = mirror / "vctk" / "D_melgan" / "ms_mg_2.wav"  # a 32-bit file
    payload = bytearray(bad.read_bytes())
    payload[-100] ^= 0xFF  # one flipped byte in the samples
    bad.write_bytes(bytes(payload))
    with pytest.raises(ChecksumError) as err:
        download.fetch("speakers", dest=tmp_path / "data", mirror=mirror, progress=False)
    msg = str(err.value)
    want = download.speakers_manifest().set_index("file").md5["vctk/D_melgan/ms_mg_2.wav"]
    assert msg.startswith("1 of 80 file(s) failed") and "vctk/D_melgan/ms_mg_2.wav" in msg
    assert want in msg and md5(bytes(payload)) in msg
    root = tmp_path / "data" / "speakers-tts-mini"
    assert not (root / "vctk" / "D_melgan" / "ms_mg_2.wav").exists()
    assert len(list(root.rglob("*.wav"))) == 79
    sub = download.speakers_manifest().iloc[[0]].assign(md5="0" * 32)
    with pytest.raises(ChecksumError, match=f"{sub.file[0]}.*expected {'0' * 32}"):
        download.fetch_manifest(sub, tmp_path / "other", mirror=shared_speakers, progress=False)


def test_training_refuses_a_test_only_set(tmp_path, shared_speakers, shared_mini, monkeypatch):
    from gpwave.config import TrainConfig
    from gpwave.errors import ConfigError

    copy = tmp_path / "renamed"  # a copy under another name, known by its MANIFEST.tsv
    (copy / "vctk").mkdir(parents=True)
    shutil.copyfile(shared_speakers / "MANIFEST.tsv", copy / "MANIFEST.tsv")
    monkeypatch.setenv("GPWAVE_DATA", str(tmp_path / "data"))
    for d in [
        shared_speakers / "vctk",
        shared_speakers / "tts" / "A_ljspeech",
        copy / "vctk",
        "${GPWAVE_DATA}/speakers-tts-mini/tts",
    ]:
        assert download.only_for_testing(str(d).replace("${GPWAVE_DATA}", "x")) == "speakers"
        with pytest.raises(ConfigError, match="test only") as err:
            TrainConfig(data_dir=str(d))
        assert str(err.value).startswith(f"data_dir={str(d)!r}")
    assert download.only_for_testing(shared_mini) is None
    assert TrainConfig(data_dir=str(shared_mini)).data_dir == str(shared_mini)


def _subset(shared_mini: Path):
    manifest = download.mini_manifest()
    plain = manifest[manifest.conversion == ""].iloc[[0, 100]]
    conv = manifest[manifest.conversion != ""].iloc[[0]]
    sub = manifest.loc[list(plain.index) + list(conv.index)].reset_index(drop=True)
    served = {}
    for _, row in sub.iterrows():
        stored = (shared_mini / row.file).read_bytes()
        if row.conversion:  # upstream is 32-bit float: rebuild it exactly from the stored file
            x, sr = sf.read(shared_mini / row.file, dtype="float32")
            stored = wav_bytes(x, sr, "FLOAT")
            assert sf.info(io.BytesIO(stored)).subtype == "FLOAT"
        served[row.file] = stored
    return sub, served


def test_fetch_manifest_converts_float_upstream_to_the_manifest_md5(tmp_path, shared_mini):
    sub, served = _subset(shared_mini)
    with FileServer({f"/up/{k}": v for k, v in served.items()}) as srv:
        sub = sub.assign(source_url=[srv.url(f"/up/{f}") for f in sub.file])
        root = download.fetch_manifest(sub, tmp_path / "mini", mirror=None, progress=False)
    for _, row in sub.iterrows():
        assert md5((root / row.file).read_bytes()) == row.md5
        assert sf.info(root / row.file).subtype == "PCM_16"


def test_fetch_manifest_from_url_mirror_and_bad_md5_row(tmp_path, shared_mini):
    sub, served = _subset(shared_mini)
    sub.loc[1, "md5"] = "f" * 32
    with FileServer({f"/mirror/{k}": v for k, v in served.items()}) as srv:
        sub = sub.assign(source_url="https://example.invalid/never-used")
        with pytest.raises(ChecksumError) as err:
            download.fetch_manifest(sub, tmp_path / "mini", mirror=srv.url("/mirror"))
        assert all(p.startswith("/mirror/") for p, _ in srv.requests)
    msg = str(err.value)
    bad = sub.loc[1]
    assert bad.file in msg and "f" * 32 in msg and md5(served[bad.file]) in msg
    assert not (tmp_path / "mini" / bad.file).exists()
    for i in (0, 2):  # nothing else lost
        assert md5((tmp_path / "mini" / sub.file[i]).read_bytes()) == sub.md5[i]


def test_manifest_missing_columns(tmp_path):
    (tmp_path / "m.tsv").write_text("file\tmd5\nA/x.wav\tabc\n")
    with pytest.raises(DataError, match="source_url"):
        download.read_manifest(tmp_path / "m.tsv")


# --- full data sets, offline --------------------------------------------------------------


def _tiny_sets():
    def w(seed):
        return wav_bytes(np.clip(chirp(seconds=1.2) + noise(1.2, seed=seed), -1, 1))

    utts = ["LJ001-0001", "LJ001-0002"]
    wavefake = {}
    for folder in [
        "ljspeech_melgan",
        "ljspeech_full_band_melgan",
        "ljspeech_multi_band_melgan",
        "ljspeech_melgan_large",
        "ljspeech_parallel_wavegan",
    ]:
        for k, u in enumerate(utts):
            wavefake[f"generated_audio/{folder}/{u}_gen.wav"] = w(k)
    wavefake["generated_audio/ljspeech_hifiGAN/LJ001-0001_generated.wav"] = w(5)
    wavefake["generated_audio/ljspeech_waveglow/LJ001-0001.wav"] = w(6)
    wavefake["generated_audio/jsut_multi_band_melgan/BASIC5000_0001_gen.wav"] = w(7)
    extension = {
        f"{f}/{u}_gen.wav": w(8 + k)
        for f in ["ljspeech_avocodo", "ljspeech_bigvgan"]
        for k, u in enumerate(utts)
    }
    lj = {f"LJSpeech-1.1/wavs/{u}.wav": w(20 + k) for k, u in enumerate(utts)}
    lj["LJSpeech-1.1/metadata.csv"] = b"LJ001-0001|x|x\nLJ001-0002|y|y\n"
    return zip_bytes(wavefake), zip_bytes(extension), tar_bytes(lj)


def _record(srv: FileServer, rid: int, name: str, payload: bytes, checksum: str | None = None):
    rec = {
        "id": rid,
        "files": [
            {
                "key": name,
                "size": len(payload),
                "checksum": f"md5:{checksum or md5(payload)}",
                "links": {"self": srv.url(f"/files/{rid}/{name}/content")},
            }
        ],
    }
    srv.files[f"/api/records/{rid}"] = json.dumps(rec).encode()
    srv.files[f"/files/{rid}/{name}/content"] = payload


@pytest.fixture
def full_sets(tmp_path, monkeypatch):
    wf, ext, lj = _tiny_sets()
    with FileServer() as srv:
        _record(srv, 5642694, "generated_audio.zip", wf)
        _record(srv, 10512541, "extension.zip", ext)
        srv.files["/mirror/LJSpeech-1.1.tar.bz2"] = lj
        monkeypatch.setenv("GPWAVE_ZENODO_API", srv.url("/api/records"))
        reg = download.registry()
        reg["ljspeech"]["sha256"] = hashlib.sha256(lj).hexdigest()
        monkeypatch.setattr(download, "registry", lambda: reg)
        yield srv


def test_fetch_full_sets_resume_and_arrange(full_sets, tmp_path):
    srv = full_sets
    srv.drop_once.add("/files/5642694/generated_audio.zip/content")
    wavefake = download.fetch("wavefake", dest=tmp_path, progress=False)
    ranged = [r for p, r in srv.requests if p.endswith("generated_audio.zip/content")]
    assert ranged[0] is None and ranged[1].startswith("bytes=")
    extension = download.fetch("extension", dest=tmp_path, progress=False)
    lj = download.fetch("ljspeech", dest=tmp_path, mirror=srv.url("/mirror"), progress=False)
    assert (tmp_path / "downloads" / "LJSpeech-1.1.tar.bz2").is_file()
    out = download.arrange(wavefake, lj, extension, tmp_path / "data")
    links = sorted(p.name for p in out.iterdir())
    assert links == [
        "A_ljspeech",
        "B_melgan",
        "C_hifigan",
        "D_mbmelgan",
        "E_fbmelgan",
        "F_waveglow",
        "G_pwg",
        "H_lmelgan",
        "I_avocodo",
        "J_bigvgan",
        "M_jsutmbmelgan",
    ]
    assert all((out / n).is_symlink() for n in links)
    assert (out / "A_ljspeech").resolve().name == "wavs"
    assert (out / "C_hifigan").resolve().name == "ljspeech_hifiGAN"
    sources = data.discover_sources(out)
    assert [s.label for s in sources] == [0] + [1] * 10
    store = prepare_store(data.DataConfig(out), store_dir=tmp_path / "s", progress=False)
    assert len(store) == 2 + 2 * 7 + 1 + 1 + 1  # 1.2 s files -> 1 frame each
    # a second fetch verifies what is there and downloads nothing
    n = len(srv.requests)
    download.fetch("wavefake", dest=tmp_path, progress=False)
    assert [p for p, _ in srv.requests[n:]] == ["/api/records/5642694"]


def test_a_fetch_that_cannot_fit_is_refused_before_any_byte(full_sets, tmp_path, monkeypatch):
    """The download plus its extraction must fit; the message gives both numbers."""
    import collections

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(transfer.shutil, "disk_usage", lambda p: usage(10**6, 10**6 - 100, 100))
    with pytest.raises(DataError, match=r"wavefake: needs about .* GB more in .* GB are free"):
        download.fetch("wavefake", dest=tmp_path, progress=False)
    assert not any(p.endswith("/content") for p, _ in full_sets.requests)
    monkeypatch.setenv("GPWAVE_SKIP_SPACE_CHECK", "1")
    assert (download.fetch("wavefake", dest=tmp_path, progress=False)).is_dir()


def test_space_needed_counts_what_is_missing(tmp_path):
    archive, out = tmp_path / "a.zip", tmp_path / "a"
    assert transfer.space_needed([(archive, 1000, out)]) == 1000 + 1150
    archive.with_name("a.zip.part").write_bytes(b"x" * 400)  # a resumable part
    assert transfer.space_needed([(archive, 1000, out)]) == 600 + 1150
    out.mkdir()  # already extracted
    assert transfer.space_needed([(archive, 1000, out)]) == 600
    tar = tmp_path / "b.tar.bz2"
    assert transfer.space_needed([(tar, 1000, tmp_path / "b")]) == 1000 + 1500


def test_zenodo_wrong_checksum_refused(full_sets, tmp_path):
    payload = full_sets.files["/files/5642694/generated_audio.zip/content"]
    _record(full_sets, 5642694, "generated_audio.zip", payload, checksum="0" * 32)
    with pytest.raises(ChecksumError, match=r"generated_audio.zip.*expected 0{32}, got"):
        download.fetch("wavefake", dest=tmp_path, progress=False)
    assert not (tmp_path / "wavefake").exists()


def test_zenodo_file_mirror(full_sets, tmp_path):
    payload = full_sets.files["/files/5642694/generated_audio.zip/content"]
    full_sets.files["/m/generated_audio.zip"] = payload
    download.fetch("wavefake", dest=tmp_path, mirror=full_sets.url("/m"), progress=False)
    assert ("/m/generated_audio.zip", None) in full_sets.requests
    assert not any(p.startswith("/files/") for p, _ in full_sets.requests)


def test_unsafe_archive_via_fetch_is_refused(full_sets, tmp_path):
    evil = zip_bytes({"ljspeech_avocodo/ok.wav": b"x", "../evil.wav": b"x"})
    _record(full_sets, 10512541, "extension.zip", evil)
    with pytest.raises(DataError, match=r"unsafe archive entry '\.\./evil\.wav'"):
        download.fetch("extension", dest=tmp_path / "d", progress=False)
    assert not (tmp_path / "evil.wav").exists() and not (tmp_path / "d" / "evil.wav").exists()


@pytest.mark.parametrize(
    "kind, entries, links",
    [
        ("zip", {"a/ok.wav": b"1", "a/../../evil.wav": b"2"}, ()),
        ("zip", {"/abs/evil.wav": b"2"}, ()),
        ("tar", {"a/ok.wav": b"1", "../evil.wav": b"2"}, ()),
        ("tar", {"/abs/evil.wav": b"2"}, ()),
        ("tar", {"a/ok.wav": b"1"}, [("a/link", "../../../etc")]),
    ],
)
def test_safe_extract_refuses_escaping_entries(tmp_path, kind, entries, links):
    payload = zip_bytes(entries) if kind == "zip" else tar_bytes(entries, "w:gz", links)
    archive = tmp_path / "x" / f"a.{kind}"
    archive.parent.mkdir()
    archive.write_bytes(payload)
    with pytest.raises(DataError, match="refusing"):
        transfer.safe_extract(archive, tmp_path / "x" / "out")
    assert not (tmp_path / "x" / "out").exists() and not (tmp_path / "evil.wav").exists()
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == [f"a.{kind}"]


def test_safe_extract_normal_archives(tmp_path):
    for kind in ("zip", "tar"):
        payload = (zip_bytes if kind == "zip" else tar_bytes)({"d/a.txt": b"hello"})
        (tmp_path / f"a.{kind}").write_bytes(payload)
        out = transfer.safe_extract(tmp_path / f"a.{kind}", tmp_path / kind)
        assert (out / "d" / "a.txt").read_bytes() == b"hello"
    (tmp_path / "n.zip").write_bytes(b"not an archive")
    with pytest.raises(DataError, match="neither"):
        transfer.safe_extract(tmp_path / "n.zip", tmp_path / "n")


def test_arrange_errors(tmp_path):
    (tmp_path / "lj" / "wavs").mkdir(parents=True)
    sf.write(tmp_path / "lj" / "wavs" / "LJ001-0001.wav", tone(300, 1.0), SR)
    (tmp_path / "wf").mkdir()
    with pytest.raises(DataError, match="missing"):
        download.arrange(tmp_path / "missing", tmp_path / "lj", None, tmp_path / "out")
    with pytest.raises(DataError, match="no WaveFake generator"):
        download.arrange(tmp_path / "wf", tmp_path / "lj", None, tmp_path / "out")
    with pytest.raises(DataError, match="no LJSpeech"):
        download.arrange(tmp_path / "wf", tmp_path / "wf", None, tmp_path / "out2")
    (tmp_path / "wf" / "ljspeech_melgan").mkdir()
    (tmp_path / "out" / "B_melgan").mkdir(parents=True, exist_ok=True)
    with pytest.raises(DataError, match="not a symlink"):
        download.arrange(tmp_path / "wf", tmp_path / "lj", None, tmp_path / "out")
    shutil.rmtree(tmp_path / "out" / "B_melgan")
    out = download.arrange(tmp_path / "wf", tmp_path / "lj", None, tmp_path / "out")
    assert (out / "B_melgan").is_symlink()


def test_fetch_unknown_name():
    with pytest.raises(ValueError, match="name"):
        download.fetch("timit")
    with pytest.raises(ValueError, match="name"):
        download.manifest("timit")
    with pytest.raises(DataError, match="ljspeech: not a manifest data set .*LJSpeech-1.1"):
        download.manifest("ljspeech")
    with pytest.raises(DataError, match="Zenodo record 5642694"):
        download.manifest("wavefake")


def test_cli_fetch_speakers(tmp_path, shared_speakers, capsys):
    from gpwave import cli

    args = ["data", "fetch", "speakers", "--dest", str(tmp_path), "--mirror", str(shared_speakers)]
    assert cli.main(args) == 0
    root = tmp_path / "speakers-tts-mini"
    assert capsys.readouterr().out.strip() == str(root)
    assert len(list(root.rglob("*.wav"))) == 80


def test_cli_fetch_mini_and_arrange(tmp_path, shared_mini, capsys, full_sets):
    from gpwave import cli

    assert (
        cli.main(["data", "fetch", "mini", "--dest", str(tmp_path), "--mirror", str(shared_mini)])
        == 0
    )
    assert capsys.readouterr().out.strip() == str(tmp_path / "wavefake-mini")
    assert cli.main(["data", "fetch", "wavefake", "--dest", str(tmp_path)]) == 0
    wavefake = capsys.readouterr().out.strip()
    mirror = full_sets.url("/mirror")
    assert cli.main(["data", "fetch", "ljspeech", "--dest", str(tmp_path), "--mirror", mirror]) == 0
    lj = capsys.readouterr().out.strip()
    out = tmp_path / "arranged"
    args = ["data", "arrange", "--wavefake", wavefake, "--ljspeech", lj, "--out", str(out)]
    assert cli.main(args) == 0
    assert (out / "A_ljspeech").is_symlink() and (out / "B_melgan").is_symlink()
    assert not (out / "I_avocodo").exists()


def test_a_row_that_cannot_be_converted_is_reported_and_the_rest_fetched(tmp_path, shared_mini):
    sub, served = _subset(shared_mini)
    conv = sub.index[sub.conversion != ""][0]
    served[sub.file[conv]] = b"RIFF garbage, not a float wav"
    with FileServer({f"/up/{k}": v for k, v in served.items()}) as srv:
        sub = sub.assign(source_url=[srv.url(f"/up/{f}") for f in sub.file])
        with pytest.raises(DataError) as err:
            download.fetch_manifest(sub, tmp_path / "mini", progress=False)
    msg = str(err.value)
    assert msg.startswith("1 of 3 file(s) failed") and "cannot convert" in msg
    assert sub.file[conv] in msg
    assert not list((tmp_path / "mini").rglob("*.upstream"))
    for i in sub.index.drop(conv):
        assert md5((tmp_path / "mini" / sub.file[i]).read_bytes()) == sub.md5[i]


def test_a_missing_mirror_folder_is_one_message(tmp_path, caplog):
    with pytest.raises(DataError) as err:
        download.fetch("mini", dest=tmp_path, mirror=tmp_path / "no-mirror", progress=False)
    assert str(err.value) == f"{tmp_path / 'no-mirror'}: the mirror folder does not exist"
    assert not caplog.records


def test_an_unreachable_url_mirror_fails_fast(tmp_path, shared_mini, monkeypatch):
    sub, _ = _subset(shared_mini)
    calls = []
    real = transfer._http_attempt
    monkeypatch.setattr(transfer, "_http_attempt", lambda *a: calls.append(a) or real(*a))
    with pytest.raises(DataError) as err:
        download.fetch_manifest(sub, tmp_path, mirror="http://127.0.0.1:1", progress=False)
    assert len(calls) == transfer.RETRIES  # the first file's attempts, no other file's
    assert "2 more file(s) not tried: source unreachable" in str(err.value)
    assert str(err.value).startswith("1 of 3 file(s) failed")
    calls.clear()
    monkeypatch.setattr(transfer, "BACKOFF", 60.0)  # the retry budget bounds the wait
    monkeypatch.setattr(transfer, "RETRY_SECONDS", 1.0)
    with pytest.raises(transfer.UnreachableError, match="after 1 attempts"):
        transfer.download_file("http://127.0.0.1:1/x.wav", tmp_path / "x.wav")
    assert len(calls) == 1


# --- killed while verifying, stalling transfers ----------------------------------------
_KILLED_WHILE_VERIFYING = """
import os, sys
import pooch.core
from gpwave import transfer
pooch.core.hash_matches = lambda *a, **k: os.kill(os.getpid(), 9)  # kill -9 mid-check
transfer.download_file(sys.argv[1], sys.argv[2], sys.argv[3], progress=False)
"""


def test_a_download_killed_while_verifying_keeps_its_part_and_leaves_nothing_foreign(tmp_path):
    import subprocess
    import sys

    payload = os.urandom(300_007)
    dest = tmp_path / "A_ljspeech" / "LJ001-0001.wav"
    dest.parent.mkdir()
    (dest.parent / "tmp_keep_me.txt").write_text("a user's file")  # not ours: kept
    env = {**os.environ, "PYTHONPATH": str(Path(download.__file__).parents[1])}
    with FileServer({"/f.wav": payload}) as srv:
        for _ in range(2):  # killed twice: no orphan piles up, no byte is fetched again
            argv = [sys.executable, "-c", _KILLED_WHILE_VERIFYING, srv.url("/f.wav")]
            proc = subprocess.run([*argv, str(dest), md5(payload)], env=env, timeout=60)
            assert proc.returncode == -9
            part = dest.with_name(dest.name + ".part")
            assert part.read_bytes() == payload  # the resumable part survived
        n_full = sum(rng is None for _, rng in srv.requests)
        assert n_full == 1  # the second run resumed at the end, did not start from byte 0
        transfer.download_file(srv.url("/f.wav"), dest, md5(payload), progress=False)
        assert sum(rng is None for _, rng in srv.requests) == 1
    assert dest.read_bytes() == payload
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name, "tmp_keep_me.txt"]


def test_retries_are_bounded_by_time_without_progress_not_since_the_first_attempt(
    tmp_path, monkeypatch
):
    import time

    payload = os.urandom(64_000)
    monkeypatch.setattr(transfer, "RETRIES", 2)
    monkeypatch.setattr(transfer, "RETRY_SECONDS", 1.0)
    real = transfer._http_attempt
    with FileServer({"/slow.bin": payload}) as srv:

        def stalling(url, part, progress):  # every attempt stalls after some new bytes
            if len(srv.requests) < 6:
                srv.drop_once.add("/slow.bin")
            time.sleep(0.3)
            return real(url, part, progress)

        monkeypatch.setattr(transfer, "_http_attempt", stalling)
        out = transfer.download_file(srv.url("/slow.bin"), tmp_path / "slow.bin", md5(payload))
        assert out.read_bytes() == payload and len(srv.requests) == 7  # 6 stalls, 1 success
        # no progress at all: still bounded (2 attempts)
        srv.files["/gone.bin"] = payload
        monkeypatch.setattr(transfer, "_http_attempt", _always_fails)
        with pytest.raises(DataError, match="after 2 attempts"):
            transfer.download_file(srv.url("/gone.bin"), tmp_path / "gone.bin", md5(payload))


def _always_fails(url, part, progress):
    raise transfer._Retryable(f"{url}: connection lost")
