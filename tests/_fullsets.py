"""Raw-download-shaped WaveFake, extension and LJSpeech archives of synthetic audio.

The dress rehearsal (``tests/test_rehearsal.py``) walks the paper-scale path offline: it
serves these archives on 127.0.0.1 as a Zenodo record API and a mirror, then runs the
README's commands against them. The layout inside each archive is the real one
(``generated_audio/<generator folder>/<utterance>_gen.wav``, ``LJSpeech-1.1/wavs/``);
only the audio is synthetic: a "speech" signal per utterance (chirps and noise), and in
every generator folder the same utterance plus that generator's own fingerprint (a
narrow-band tone and a high-frequency noise floor), so a detector has something to learn.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile

import numpy as np
import soundfile as sf
from _signals import SR, chirp, noise, tone

#: WaveFake's generator folders (inside ``generated_audio/``) and the extension's.
WAVEFAKE_LJ = [
    "ljspeech_melgan",
    "ljspeech_full_band_melgan",
    "ljspeech_multi_band_melgan",
    "ljspeech_melgan_large",
    "ljspeech_parallel_wavegan",
    "ljspeech_hifiGAN",
    "ljspeech_waveglow",
]
WAVEFAKE_JSUT = ["jsut_multi_band_melgan", "jsut_parallel_wavegan"]
EXTENSION = ["ljspeech_avocodo", "ljspeech_bigvgan"]


#: Utterances the data chapter plays as examples (its ``example_utterances``): every
#: synthetic set holds them, so the paper-scale book's chapter 02 finds them here too.
EXAMPLE_UTTERANCES = ["LJ050-0029", "LJ008-0217"]


def utterances(n: int) -> list[str]:
    """``n`` LJSpeech-style utterance ids, the data chapter's examples first."""
    ids = [f"LJ{1 + i // 50:03d}-{1 + i % 50:04d}" for i in range(n)]
    return (EXAMPLE_UTTERANCES + ids)[:n] if n >= len(EXAMPLE_UTTERANCES) else ids


def speech(utt: str, seconds: float) -> np.ndarray:
    """A deterministic speech-like signal for an utterance id (float32, peak < 1)."""
    seed = int(hashlib.sha256(utt.encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng(seed)
    x = chirp(rng.uniform(80, 300), rng.uniform(2000, 6000), seconds)
    return (0.6 * x + noise(seconds, seed=seed, amp=0.05)).astype(np.float32)


def fingerprint(k: int, seconds: float) -> np.ndarray:
    """Generator ``k``'s artefact: a tone in its own band and a high-frequency floor."""
    hf = noise(seconds, seed=10_000 + k, amp=0.02)
    hf = np.diff(hf, prepend=0.0).astype(np.float32)  # tilt the floor towards high bands
    return tone(6000 + 400 * k, seconds, amp=0.03) + hf


def _wav(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.clip(x, -1, 1), SR, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, payload in files.items():
            zf.writestr(name, payload)
    return buf.getvalue()


def _tar_bz2(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:bz2") as tf:
        for name, payload in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def archives(n_utts: int = 40, seconds: float = 2.2) -> dict[str, bytes]:
    """The three downloads: ``generated_audio.zip``, ``extension.zip``, LJSpeech's tarball.

    Args:
        n_utts: LJSpeech utterances (every LJSpeech generator re-synthesises all of them;
            the JSUT folders get ``n_utts // 4`` files of their own).
        seconds: Length of every file (2.2 s: two 1 s frames each).

    Returns:
        File name -> archive bytes.
    """
    utts = utterances(n_utts)
    real = {u: speech(u, seconds) for u in utts}
    lj = {f"LJSpeech-1.1/wavs/{u}.wav": _wav(x) for u, x in real.items()}
    lj["LJSpeech-1.1/metadata.csv"] = "".join(f"{u}|text|text\n" for u in utts).encode()
    wavefake: dict[str, bytes] = {}
    for k, folder in enumerate(WAVEFAKE_LJ):
        for u, x in real.items():
            wavefake[f"generated_audio/{folder}/{u}_gen.wav"] = _wav(x + fingerprint(k, seconds))
    for k, folder in enumerate(WAVEFAKE_JSUT, start=len(WAVEFAKE_LJ)):
        for i in range(max(1, n_utts // 4)):
            u = f"BASIC5000_{i + 1:04d}"
            x = speech(u, seconds) + fingerprint(k, seconds)
            wavefake[f"generated_audio/{folder}/{u}_gen.wav"] = _wav(x)
    ext: dict[str, bytes] = {}
    for k, folder in enumerate(EXTENSION, start=len(WAVEFAKE_LJ) + len(WAVEFAKE_JSUT)):
        for u, x in real.items():
            ext[f"{folder}/{u}_gen.wav"] = _wav(x + fingerprint(k, seconds))
    return {
        "generated_audio.zip": _zip(wavefake),
        "extension.zip": _zip(ext),
        "LJSpeech-1.1.tar.bz2": _tar_bz2(lj),
    }


def zenodo_record(rid: int, name: str, payload: bytes, url: str) -> bytes:
    """The JSON of a Zenodo record API answer listing one file with its md5."""
    rec = {
        "id": rid,
        "files": [
            {
                "key": name,
                "size": len(payload),
                "checksum": f"md5:{hashlib.md5(payload).hexdigest()}",
                "links": {"self": url},
            }
        ],
    }
    return json.dumps(rec).encode()
