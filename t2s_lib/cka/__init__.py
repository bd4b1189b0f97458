"""Centered Kernel Alignment between backbones, stage by stage (reference 8; supplementary Figure 1).

``maths``: Gram matrices, unbiased HSIC, (minibatch) CKA; ``study``: stage features of backbones on
tasks, matrices per stage and task, save/load; ``figures``: heat maps and summaries.
"""

from .figures import cka_finding, group_mean, mean_off_diagonal, plot_cka, plot_cka_groups
from .maths import MinibatchCKA, cka, gram, hsic_unbiased, median, minibatch_cka
from .study import STAGES, cka_matrices, cka_study, cka_tasks, load_cka, save_cka, stage_models

__all__ = ["MinibatchCKA", "STAGES", "cka", "cka_matrices", "cka_study", "cka_tasks", "gram", "hsic_unbiased", "load_cka",
           "mean_off_diagonal", "median", "minibatch_cka", "plot_cka", "save_cka", "stage_models", "cka_finding",
           "group_mean", "plot_cka_groups"]
