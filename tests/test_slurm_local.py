"""The reward-table builder on a real Slurm cluster: one node on localhost (munge, MariaDB, slurmdbd,
slurmctld, slurmd from Debian's packages, started by ``scripts/slurm-local.sh``). Skipped, with the
script's reason, where that cluster cannot be had (not root and the packages missing).

What a cluster does to a build: a job array capped at ``rewards.slurm.array_parallelism``; a job
requeued (``scontrol requeue``) or cancelled (``scancel``) mid pre-training resumes from its cell's
checkpoint, and the table then equals an uninterrupted build; a failed cell is reported while the others
finish; torchrun with 2 processes (gloo) inside one job; a job the cluster refuses is a clear error
naming the profile key.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from t2s_lib.errors import T2SError
from t2s_lib.profiles import SlurmSpec, load_profile
from t2s_lib.rewards.build import build_table
from t2s_lib.rewards.cells import cell_dir
from t2s_lib.rewards.spec import Cell, spec_from_profile

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "slurm-local.sh"
DR, OFF = "1_1_1_1_1_3_0_1_1", "0_0_0_0_0_1_0_0_0"


@pytest.fixture(scope="module")
def slurm():
    """SLURM_CONF of the running local cluster (started here, stopped after the module). Its folder is the
    script's default under /tmp: the database daemon runs as the mysql user, who cannot enter pytest's
    private temporary folders."""
    env = dict(os.environ)
    for step, limit in (("install", 600), ("start", 180)):
        proc = subprocess.run(["bash", str(SCRIPT), step], capture_output=True, text=True, env=env, timeout=limit)
        if proc.returncode == 3:
            pytest.skip(f"no local Slurm cluster here: {proc.stderr.strip()}")
        assert proc.returncode == 0, proc.stderr
    conf = subprocess.run(["bash", str(SCRIPT), "env"], capture_output=True, text=True, env=env).stdout.strip()
    yield conf.split("=", 1)[1]
    subprocess.run(["bash", str(SCRIPT), "stop"], env=env, timeout=60)


@pytest.fixture
def cluster(slurm, monkeypatch):
    monkeypatch.setenv("SLURM_CONF", slurm)
    return slurm


def _spec(settings, *, epochs=1, images=48):
    prof = load_profile("smoke", {"pretrain.recipe.epochs": epochs, "pretrain.render.images": images})
    spec = spec_from_profile(prof, design="explicit", settings=settings, tasks=["digits"], seeds=[0],
                             replicate_settings=[], replicate_seeds=[], anchors=False)
    return dataclasses.replace(spec, scratch_seeds=[], validation=False)


def _cpu_jobs(**kw) -> SlurmSpec:
    """Cell jobs of this GPU-less node."""
    return SlurmSpec(gpus_per_node=0, **kw)


def _sacct(*fields: str) -> list[dict[str, str]]:
    out = subprocess.run(["sacct", "-a", "-X", "--parsable2", "-n", "-o", ",".join(fields)], capture_output=True,
                         text=True, check=True).stdout
    return [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line.strip()]


def _state(job: str) -> str:
    return subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True).stdout.strip()


def _epochs_logged(table: Path, cell: Cell) -> int:
    log = cell_dir(table, cell) / "pretrain" / "metrics.jsonl"
    return len(log.read_text().splitlines()) if log.is_file() else 0


def test_a_build_is_one_job_array_capped_at_array_parallelism(cluster, tmp_path, lib, digits_task):
    before = {r["JobID"] for r in _sacct("JobID")}
    spec = _spec([OFF, DR, "1_0_0_0_0_1_0_0_0"])
    result = build_table(tmp_path / "t", spec, executor="slurm", slurm=_cpu_jobs(cpus_per_task=1, array_parallelism=1))
    assert not result.failed and len(result.done) == 3
    jobs = [r for r in _sacct("JobID", "State", "Start", "End") if r["JobID"] not in before]
    arrays = {r["JobID"].split("_")[0] for r in jobs}
    assert len(arrays) == 1 and sorted(r["JobID"].split("_")[1] for r in jobs) == ["0", "1", "2"], jobs
    spans = sorted((r["Start"], r["End"]) for r in jobs)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), f"the cap of 1 let jobs overlap: {spans}"


@pytest.mark.parametrize("interruption", ["requeue", "scancel"])
def test_an_interrupted_job_resumes_from_its_checkpoint_and_equals_an_uninterrupted_build(
        interruption, cluster, tmp_path, lib, digits_task):
    spec = _spec([OFF], epochs=60, images=160)  # long enough that the interruption lands mid pre-training
    cell = Cell(OFF, 0)
    slurm = _cpu_jobs(cpus_per_task=2, array_parallelism=1)
    box: dict = {}
    builder = threading.Thread(target=lambda: box.update(
        result=build_table(tmp_path / "cut", spec, executor="slurm", slurm=slurm, log=lambda line: None)))
    builder.start()
    deadline = time.time() + 300
    while time.time() < deadline and _epochs_logged(tmp_path / "cut", cell) < 2:
        time.sleep(0.2)
    assert _epochs_logged(tmp_path / "cut", cell) >= 2, "pre-training should have checkpointed two epochs"
    running = [r["JobID"] for r in _sacct("JobID", "State") if r["State"] == "RUNNING"]
    assert len(running) == 1 and _epochs_logged(tmp_path / "cut", cell) < 60, "the interruption must land mid pre-training"
    subprocess.run(["scontrol", "requeue", running[0]] if interruption == "requeue" else ["scancel", running[0]],
                   check=True)
    if interruption == "requeue":  # Slurm holds a requeued job back (BeginTime) before it is eligible again
        deadline = time.time() + 60
        while time.time() < deadline and _state(running[0]) != "PENDING":
            time.sleep(0.2)
        subprocess.run(["scontrol", "update", f"JobId={running[0]}", "StartTime=now"], check=True)
    builder.join(timeout=600)
    assert not builder.is_alive()
    if interruption == "scancel":  # reported, then the same build resumes the cell
        assert cell.name in box["result"].failed and json.loads((tmp_path / "cut" / "failed.json").read_text())
        box["result"] = build_table(tmp_path / "cut", spec, executor="slurm", slurm=slurm, log=lambda line: None)
    assert not box["result"].failed
    log = [json.loads(line) for line in (cell_dir(tmp_path / "cut", cell) / "pretrain" / "metrics.jsonl")
           .read_text().splitlines()]
    assert [r["epoch"] for r in log] in (list(range(1, 61)), list(range(60)))
    whole = build_table(tmp_path / "whole", spec, executor="slurm", slurm=slurm, log=lambda line: None)
    assert not whole.failed
    cut = json.loads((tmp_path / "cut" / "reward_table.json").read_text())
    assert cut == json.loads((tmp_path / "whole" / "reward_table.json").read_text())


def test_a_failed_cell_is_reported_while_the_others_finish(cluster, tmp_path, lib, digits_task):
    spec = _spec([OFF, DR])
    broken = cell_dir(tmp_path / "t", Cell(DR, 0)) / "images"
    broken.parent.mkdir(parents=True)
    broken.write_text("a file where the cell's images go")
    result = build_table(tmp_path / "t", spec, executor="slurm", slurm=_cpu_jobs(cpus_per_task=1, array_parallelism=2),
                         log=lambda line: None)
    assert list(result.failed) == [Cell(DR, 0).name] and Cell(OFF, 0).name in result.done
    assert json.loads((tmp_path / "t" / "failed.json").read_text()).keys() == {Cell(DR, 0).name}


def test_torchrun_runs_two_processes_inside_one_job(cluster, tmp_path, lib, digits_task):
    spec = _spec([OFF], epochs=2, images=96)
    result = build_table(tmp_path / "t", spec, executor="slurm",
                         slurm=_cpu_jobs(processes=2, cpus_per_task=2, array_parallelism=1))
    assert not result.failed
    config = json.loads((cell_dir(tmp_path / "t", Cell(OFF, 0)) / "pretrain" / "config.json").read_text())
    assert config.get("world_size") == 2, config


def test_a_job_the_cluster_refuses_names_the_profile_key(cluster, tmp_path, lib, digits_task):
    with pytest.raises(T2SError, match=r"rewards\.slurm") as err:
        build_table(tmp_path / "t", _spec([OFF]), executor="slurm",
                    slurm=_cpu_jobs(partition="no-such-partition", cpus_per_task=1))
    assert "partition" in err.value.problem
