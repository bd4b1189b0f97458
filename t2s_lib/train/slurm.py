"""Slurm launcher (submitit): one task per GPU, torchrun-style environment set from submitit's."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .config import PretrainConfig


class _SlurmPretrain:
    """Picklable job: sets RANK/WORLD_SIZE/... from the Slurm job, then calls :func:`pretrain`.

    ``checkpoint`` lets submitit requeue a pre-empted job; the rerun resumes from checkpoint.pt.
    """

    def __init__(self, cfg: PretrainConfig):
        self.cfg = cfg

    def __call__(self) -> str:
        import submitit

        env = submitit.JobEnvironment()
        os.environ.update({"RANK": str(env.global_rank), "WORLD_SIZE": str(env.num_tasks),
                           "LOCAL_RANK": str(env.local_rank), "MASTER_ADDR": env.hostnames[0],
                           "MASTER_PORT": os.environ.get("MASTER_PORT", "29512")})
        from .loop import pretrain

        return str(pretrain(self.cfg))

    def checkpoint(self) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(_SlurmPretrain(self.cfg))


def submit_slurm(cfg: PretrainConfig, *, nodes: int = 1, gpus_per_node: int = 4, partition: str | None = None,
                 timeout_min: int = 24 * 60, cpus_per_task: int = 10, log_dir: str | Path | None = None,
                 extra: dict[str, Any] | None = None, cluster: str | None = None):
    """Submit a pre-training job to Slurm through submitit; returns the submitit Job.

    ``cluster="debug"`` (or ``"local"``) runs the same job without Slurm (submitit's test executors).
    """
    import submitit

    log_dir = Path(log_dir or Path(cfg.out) / "slurm")
    executor = submitit.AutoExecutor(folder=str(log_dir), cluster=cluster)
    params: dict[str, Any] = dict(nodes=nodes, gpus_per_node=gpus_per_node, tasks_per_node=max(1, gpus_per_node),
                                  cpus_per_task=cpus_per_task, timeout_min=timeout_min, name="t2s-pretrain")
    if partition:
        params["slurm_partition"] = partition
    params.update(extra or {})
    executor.update_parameters(**params)
    return executor.submit(_SlurmPretrain(cfg))
