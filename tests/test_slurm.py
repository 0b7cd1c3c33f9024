"""configs/slurm/train.sbatch under stand-ins for Slurm, conda and torchrun.

The script is run with ``bash`` (no Slurm here); ``scontrol``, ``srun``, ``torchrun`` and
``conda`` are small scripts on PATH that record how they were called.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SBATCH = REPO / "configs" / "slurm" / "train.sbatch"


def _stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/bash\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture()
def slurm(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    _stub(bin_dir, "scontrol", "echo node01")
    _stub(bin_dir, "srun", 'shift; "$@"')  # drop --cpus-per-task, run the rest
    _stub(bin_dir, "torchrun", f'echo "torchrun $*" >> {log}')
    # `conda shell.bash hook` prints a shell function; `conda activate X` is recorded.
    _stub(
        bin_dir,
        "conda",
        f'if [ "$1" = shell.bash ]; then echo "conda() {{ echo conda \\"\\$@\\" >> {log}; }}"; fi',
    )

    def run(job_id: int, env_extra: dict[str, str]) -> str:
        env = {
            "PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path),
            "SLURM_JOB_ID": str(job_id), "SLURM_JOB_NODELIST": "node01",
            "SLURM_JOB_NUM_NODES": "1", "SLURM_GPUS_ON_NODE": "2", **env_extra,
        }  # fmt: skip
        log.write_text("")
        subprocess.run(["bash", str(SBATCH), "configs/mini.yaml", "out"], env=env,
                       cwd=tmp_path, check=True, capture_output=True, text=True)  # fmt: skip
        return log.read_text()

    return run


def test_two_jobs_get_different_rendezvous_ports(slurm):
    first, second = slurm(1001, {}), slurm(1002, {})
    port = [line.split("--rdzv-endpoint=node01:")[1].split()[0] for line in (first, second)]
    assert port[0] != port[1] and all(20000 <= int(p) < 40000 for p in port)
    assert "29500" not in first + second


def test_master_port_overrides_the_job_port(slurm):
    assert "--rdzv-endpoint=node01:31234" in slurm(1001, {"MASTER_PORT": "31234"})


def test_a_conda_environment_given_by_path_is_activated_with_conda(slurm, tmp_path):
    env = tmp_path / "envs" / "gpwave"
    (env / "conda-meta").mkdir(parents=True)
    (env / "bin").mkdir()
    (env / "bin" / "activate").write_text("echo this is conda's own activate, not a venv's\n")
    calls = slurm(1001, {"GPWAVE_ENV": str(env)})
    assert f"conda activate {env}" in calls and "torchrun" in calls


def test_a_venv_folder_is_sourced(slurm, tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    marker = tmp_path / "sourced"
    (venv / "bin" / "activate").write_text(f"touch {marker}\n")
    calls = slurm(1001, {"GPWAVE_ENV": str(venv)})
    assert marker.is_file() and "conda activate" not in calls and "torchrun" in calls
