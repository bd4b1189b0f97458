"""The reward table as a measurement: for each simulator setting of a design, render -> pre-train ->
5-NN on every task (with seed replicates), resumable per cell, on one machine or a Slurm cluster.

>>> from t2s_lib.rewards import build_table, spec_from_profile
>>> spec = spec_from_profile(load_profile("cpu"))
>>> build_table("runs/cpu/rewards", spec)          # reward_table.json, rewards.csv, cells/<key>/s<seed>/
"""

from .build import EXECUTORS, BuildResult, CellJob, assemble, build_table, collect_rows, seed_averaged, table_status
from .cells import backbone_spec, cell_dir, checkpoint_path, run_cell
from .design import DESIGNS, GENERATORS, design_settings, fractional_factorial, resolution, resolution_from_matrix
from .spec import SCRATCH, Cell, RewardSpec, read_spec, spec_from_profile

__all__ = ["BuildResult", "Cell", "CellJob", "DESIGNS", "EXECUTORS", "GENERATORS", "RewardSpec", "SCRATCH", "assemble",
           "backbone_spec", "build_table", "cell_dir", "checkpoint_path", "collect_rows", "design_settings",
           "fractional_factorial", "read_spec", "resolution", "resolution_from_matrix", "run_cell", "seed_averaged",
           "spec_from_profile", "table_status"]
