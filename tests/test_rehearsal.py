"""The dress rehearsal: the README's paper-scale commands, verbatim, on CPU (``make rehearsal``).

Synthetic raw downloads shaped like WaveFake's ``generated_audio.zip``, the extension's
``extension.zip`` and ``LJSpeech-1.1.tar.bz2`` (``tests/_fullsets.py``: 40 utterances of
2.2 s, 7 LJSpeech generator folders, 2 JSUT folders and 2 extension folders: 840
one-second frames) are served on 127.0.0.1 as a Zenodo record API and a mirror. Then every
command of README.md's "Running at paper scale on a GPU node" code blocks runs, read from
the README itself so the two cannot drift apart, with a fresh ``$GPWAVE_DATA``. Changed are
only ``cuda`` -> ``cpu``, 4 -> 2 torchrun processes (gloo), and a tiny training budget added
through the documented override mechanisms (``overrides`` of the notebook, ``--set`` of
``gpwave train``; one loader worker, as on a GPU node). ``conda``, ``export`` and
``sbatch`` lines are not run (the sbatch template is checked to exist). Before the
``--resume`` line, the same run without ``--resume`` is started and killed (SIGKILL) once
its first epoch is checkpointed.

It checks that one frame store is built by ``gpwave data prepare`` and reused by every
later command (none under the run folders, no shard rewritten), that checkpoints, metrics
and test tables exist, and that the resumed run finished what the killed one started.
3-5 minutes on 2 shared CPU cores.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from _fullsets import archives, zenodo_record
from _http import FileServer

from gpwave import cli, download

REPO = Path(__file__).resolve().parents[1]
SECTION = "## Running at paper scale on a GPU node"
#: The tiny budget laid over every training command (keys of gpwave.config.TrainConfig).
TINY = {
    "epochs": 2,
    "seeds": [0],
    "limit_train": 16,
    "limit_val": 8,
    "limit_test": 4,
    "batch_size": 8,
    "n_boot": 10,
    "threads": 1,
    "progress": False,
    "workers": 1,  # the GPU default reads in background processes: exercise that path too
}
ZENODO = {"generated_audio.zip": 5642694, "extension.zip": 10512541}


def readme_commands(path: Path = REPO / "README.md", heading: str = SECTION) -> list[list[str]]:
    """The commands of a section's bash blocks, one argv each (``$VARS`` expanded)."""
    text = path.read_text()
    assert heading in text, f"{path.name} has no section {heading!r}"
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.S):
        block = re.sub(r"^ {3}", "", block, flags=re.M)  # blocks inside list items
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            argv = shlex.split(os.path.expandvars(line), comments=True)
            if argv and argv[0] not in ("conda", "export"):
                commands.append(argv)
    return commands


def rehearse(argv: list[str]) -> list[str]:
    """A README command as it runs here: on the CPU with a tiny budget."""
    argv = ["cpu" if a == "cuda" else a for a in argv]
    if argv[0] == "papermill":
        for i, a in enumerate(argv[:-1]):
            if a == "-y" and "overrides:" in argv[i + 1]:
                y = yaml.safe_load(argv[i + 1].replace("cuda", "cpu"))
                y["overrides"] = {**y["overrides"], **TINY}
                argv[i + 1] = yaml.safe_dump(y, default_flow_style=True, width=1000).strip()
        return [sys.executable, "-m", "papermill", "--no-progress-bar", *argv[1:]]
    if argv[0] == "torchrun":
        k = argv.index("--nproc-per-node")
        argv[k + 1] = "2"
        argv = [sys.executable, "-m", "torch.distributed.run", *argv[1:]]
    elif argv[0] == "gpwave":
        argv = [sys.executable, "-m", "gpwave", *argv[1:]]
    if "train" in argv:
        argv += [x for k, v in TINY.items() for x in ("--set", f"{k}={json.dumps(v)}")]
    return argv


def _serve(srv: FileServer, n_utts: int, seconds: float) -> bytes:
    """Zenodo records + a mirror holding every archive; returns LJSpeech's tarball."""
    files = archives(n_utts, seconds)
    for name, payload in files.items():
        srv.files[f"/mirror/{name}"] = payload
        if name in ZENODO:
            rid = ZENODO[name]
            url = srv.url(f"/files/{rid}/{name}/content")
            srv.files[f"/api/records/{rid}"] = zenodo_record(rid, name, payload, url)
            srv.files[f"/files/{rid}/{name}/content"] = payload
    return files["LJSpeech-1.1.tar.bz2"]


def _shards(data: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in sorted(data.glob("stores/*/shards/*/frames.npy"))}


def _kill_after_first_epoch(argv: list[str], env: dict, cwd: Path, last: Path) -> None:
    """Start a training run and SIGKILL it once ``last`` holds its first epoch."""
    log = cwd / "killed_run.log"
    with log.open("w") as f:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=f, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 600
        while not last.is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"ended before the kill: {log.read_text()[-3000:]}"


def test_reproduce_chapter_runs_the_commands_the_rehearsal_runs():
    """Every command of the Reproduce chapter's GPU section is one of the README's."""
    readme = readme_commands()
    chapter = readme_commands(REPO / "book" / "reproduce.md", "## On a GPU node")
    assert len(chapter) >= 10
    missing = [shlex.join(c) for c in chapter if c[0] != "python" and c not in readme]
    assert not missing, f"book/reproduce.md runs commands README.md does not: {missing}"


def _parameters(notebook: Path) -> set[str]:
    """Names the ``parameters`` cell of a notebook's jupytext source assigns."""
    import ast

    import jupytext

    cells = [c for c in jupytext.read(notebook).cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{notebook}: no single parameters cell"
    tree = ast.parse(cells[0].source)
    return {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets}


def test_documented_notebook_parameters_exist():
    """papermill only warns about an unknown ``-p``: a typo would silently run defaults."""
    for argv in readme_commands():
        if argv[0] != "papermill":
            continue
        given = [argv[i + 1] for i, a in enumerate(argv) if a == "-p"]
        given += [k for i, a in enumerate(argv) if a == "-y" for k in yaml.safe_load(argv[i + 1])]
        known = _parameters(REPO / Path(argv[1]).with_suffix(".py"))
        assert set(given) <= known, f"{argv[1]}: no parameter {sorted(set(given) - known)}"


@pytest.mark.slow
def test_readme_paper_scale_commands_run_verbatim_on_cpu(tmp_path, monkeypatch):
    import torch

    data, work = tmp_path / "data", tmp_path / "work"
    work.mkdir()
    for name in ("notebooks", "configs"):  # the README's paths are relative to a checkout
        (work / name).symlink_to(REPO / name)
    with FileServer() as srv:
        lj = _serve(srv, n_utts=40, seconds=2.2)
        monkeypatch.chdir(work)
        monkeypatch.setenv("GPWAVE_DATA", str(data))
        monkeypatch.setenv("GPWAVE_DATA_MIRROR", srv.url("/mirror"))
        monkeypatch.setenv("GPWAVE_ZENODO_API", srv.url("/api/records"))
        reg = download.registry()  # the real LJSpeech's sha256 is pinned: pin the stand-in's
        reg["ljspeech"]["sha256"] = hashlib.sha256(lj).hexdigest()
        monkeypatch.setattr(download, "registry", lambda: reg)
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "OMP_NUM_THREADS": "1",
            "MPLBACKEND": "Agg",
            "GPWAVE_DIST_TIMEOUT": "600",
        }
        commands = readme_commands()
        names = [" ".join(c[:3]) for c in commands]
        for step in ("gpwave data fetch", "gpwave data arrange", "gpwave data prepare"):
            assert any(n.startswith(step) for n in names), f"README lost `{step}`"
        assert ["make", "book-paper"] in commands
        assert any(c[0] == "torchrun" for c in commands)
        assert any("--resume" in c for c in commands)

        for name in ("some.wav", "other.wav"):  # `gpwave detect ... some.wav other.wav`
            _write_probe(work / name)
        shards_after_prepare = None
        for argv in commands:
            if argv[0] == "sbatch":
                assert (work / argv[1]).is_file(), argv
                continue
            if argv == ["make", "book-paper"]:
                _rehearse_paper_book(data, env, tmp_path)
                continue
            if argv[:2] == ["gpwave", "data"]:  # in this process: the registry is patched
                assert cli.main(argv[1:]) == 0, argv
                if argv[2] == "prepare":
                    shards_after_prepare = _shards(data)
                continue
            run = rehearse(argv)
            if "--resume" in run:
                out = work / run[run.index("--out") + 1]
                last = out / "seed0" / "last.pt"
                last.unlink(missing_ok=True)
                # the same run started afresh over the one the README trained before, killed
                resumed = [*(a for a in run if a != "--resume"), "--overwrite"]
                _kill_after_first_epoch(resumed, env, work, last)
                assert torch.load(last, weights_only=True)["epoch"] == 1
            proc = subprocess.run(run, env=env, cwd=work, capture_output=True, text=True)
            assert proc.returncode == 0, f"{shlex.join(argv)}\n{proc.stderr[-4000:]}"
            if "--resume" in run:
                m = json.loads((out / "seed0" / "metrics.json").read_text())
                assert [r["epoch"] for r in m["resumes"]] == [1]
                assert len(m["history"]) == TINY["epochs"] and (out / "seed0" / "best.pt").is_file()

    # one store of the full tree, built by `gpwave data prepare` and reused by every later
    # command (the book's chapters 07 and 08 keep their own stores of the other sets)
    assert shards_after_prepare and len(shards_after_prepare) == 12  # A + 9 WaveFake + 2 ext.
    now = _shards(data)
    assert {k: now[k] for k in shards_after_prepare} == shards_after_prepare
    full = [p for p in data.glob("stores/*/store.json")
            if json.loads(p.read_text())["config"]["root"].endswith("wavefake-full")]  # fmt: skip
    assert len(full) == 1
    assert list(work.rglob("store.json")) == []
    cli_run = torch.load(work / "runs" / "wavefake" / "seed0" / "best.pt", weights_only=True)
    assert cli_run["config"]["train_generator"] == "fbmelgan"


def _checkout(dest: Path) -> Path:
    """A copy of the repository's tracked files (the book build writes into its checkout)."""
    import shutil

    files = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True,
                           check=True).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, files):
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, target)
    if (REPO / "node_modules").is_dir():  # onnxruntime-web for the Try page (make web-deps)
        (dest / "node_modules").symlink_to(REPO / "node_modules")
    return dest


def _rehearse_paper_book(data: Path, env: dict, tmp: Path) -> None:
    """`make book-paper` on CPU: the paper's matrix with its quick budgets on the synthetic
    tree, killed once during its second training run, then run again to the end.

    The chapters that read the released models, speakers-tts-mini, the mini benchmark and
    speakers-train find them as ``$GPWAVE_DATA/...`` links to ``../shared``.
    """
    shared = REPO.parent / "shared"
    for name in ("wavefake-mini", "speakers-tts-mini", "speakers-train"):
        if not (shared / name).is_dir():
            pytest.skip(f"../shared/{name} is needed by the paper-scale book's chapters")
        (data / name).symlink_to(shared / name)
    env = {**env, "GPWAVE_MODELS_MIRROR": str(shared / "reference-models")}
    checkout = _checkout(tmp / "checkout")
    env["PYTHONPATH"] = str(checkout)
    cmd = [sys.executable, "-m", "gpwave", "book", "--matrix", "configs/book-wavefake.yaml",
           "--quick", "--device", "cpu", "--data", str(data / "wavefake-full")]  # fmt: skip
    log = tmp / "book_killed.log"
    with log.open("w") as f:
        proc = subprocess.Popen(cmd, env=env, cwd=checkout, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 1800
        while "executed 03_train-dcnn_packets" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        time.sleep(5)  # inside the next training run
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = subprocess.run(cmd, env=env, cwd=checkout, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for name in ("01_fingerprints", "02_data", "03_train-dcnn_packets"):
        assert f"reused   {name}" in done.stdout, done.stdout[-3000:]
    assert "executed 03_train-dcnn_nodil" in done.stdout
    results = checkout / "results" / "book-wavefake" / "quick"
    for run in ("dcnn_packets", "dcnn_nodil", "dcnn_stft", "dcnn_stft_nodil", "gmm_lfcc"):
        for seed in (0, 1):
            assert (results / "runs" / run / f"seed{seed}" / "best.pt").is_file(), (run, seed)
    html = checkout / "book" / "_build" / "html" / "executed"
    assert "DCNN without dilation, STFT" in (html / "04_generalization.html").read_text()
    assert (html / "05_dilation.html").is_file() and (html / "06_attribution.html").is_file()
    assert (results / "dilation" / "paired_difference.csv").is_file()


def _write_probe(path: Path) -> None:
    """A 2 s synthetic file to run ``gpwave detect`` on."""
    from _signals import SR, chirp

    sf.write(path, np.clip(chirp(seconds=2.0), -1, 1), SR)
