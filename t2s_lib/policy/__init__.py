"""Task -> simulation-setting policies on a reward table.

Variants (``METHODS`` registry): ``paper`` and ``per-task`` (the published controller with the
released and the textbook REINFORCE loss), ``reward-kernel`` (ours, the default), ``measured``
(ours: K stored backbones scored on the task itself, see :mod:`.measured`), and the
baselines ``oracle``, ``domain-randomization``, ``all-off``, ``best-fixed``, ``random``,
``nearest-seen``.
"""

from . import baselines, measured, reward_kernel, task2sim  # noqa: F401  (register the variants)
from .baselines import BASELINES
from .methods import DEFAULT_VARIANT, METHODS, Prediction
from .problem import PolicyProblem, problem_from_files, published_problem
from .runner import CONTROLLER_VARIANTS, format_summary, run_variant, write_summary

__all__ = [
    "BASELINES",
    "CONTROLLER_VARIANTS",
    "DEFAULT_VARIANT",
    "METHODS",
    "PolicyProblem",
    "Prediction",
    "format_summary",
    "problem_from_files",
    "published_problem",
    "run_variant",
    "write_summary",
]
