"""The published Task2Sim controller as a policy variant: ``paper`` and ``per-task`` losses."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .controller import Controller, ControllerConfig, actions_to_index, distance_weighted_probabilities, span_basis
from ..errors import T2SError
from .methods import METHODS, Prediction
from .problem import PolicyProblem


class FittedController:
    def __init__(self, problem: PolicyProblem, controller: Controller, curves: dict[str, list[float]]):
        self.problem = problem
        self.controller = controller
        self.curves = curves
        self._seen_probs = controller.probabilities(problem.matrix(problem.seen))

    def predict(self, tasks: Sequence[str]) -> Prediction:
        tasks = tuple(tasks)
        x = self.problem.matrix(tasks)
        probs = self.controller.probabilities(x)
        # The published distance-weighted variant: a cosine-weighted mixture of the seen tasks'
        # head probabilities (reported for tasks that are not seen).
        dw_probs = distance_weighted_probabilities(x, self.problem.matrix(self.problem.seen), self._seen_probs)
        dw = actions_to_index(dw_probs.argmax(axis=-1))
        return Prediction(
            tasks,
            actions_to_index(probs.argmax(axis=-1)),
            p_vary=probs[..., 1],
            extras={"distance_weighted_indices": dw, "distance_weighted_p_vary": dw_probs[..., 1]},
        )


def fit_controller(
    problem: PolicyProblem,
    seed: int = 0,
    *,
    loss: str = "paper",
    epochs: int = 1000,
    record_curves: bool = True,
    **config,
) -> FittedController:
    """Train the controller on the seen tasks with ``seed``; record learning curves of the mean
    greedy reward on seen and unseen tasks after each epoch."""
    if len(problem.table.keys) != 256:
        raise T2SError(
            f"the controller needs rewards for all 256 settings; table {problem.name!r} has {len(problem.table.keys)}",
            "use reward-kernel or a baseline for a partial reward table, or complete the table",
        )
    cfg = ControllerConfig(loss=loss, epochs=epochs, **config)
    basis = span_basis(problem.matrix(problem.all_tasks))
    ctrl = Controller(cfg, problem.dim, seed, basis)
    seen_z = ctrl.encode(problem.matrix(problem.seen))
    curves = {}
    if record_curves:
        curves["seen"] = (seen_z, problem.rewards(problem.seen))
        if problem.unseen:
            curves["unseen"] = (ctrl.encode(problem.matrix(problem.unseen)), problem.rewards(problem.unseen))
    # The published loop walks the seen tasks sorted by name.
    order = np.argsort(np.array(problem.seen))
    recorded = ctrl.fit(seen_z[order], problem.rewards(problem.seen)[order], curve_inputs=curves)
    return FittedController(problem, ctrl, recorded)


@METHODS.register("paper")
def fit_paper(problem: PolicyProblem, seed: int = 0, **options) -> FittedController:
    """Released-code loss (B x B broadcast): reproduces the published numbers."""
    return fit_controller(problem, seed, loss="paper", **options)


@METHODS.register("per-task")
def fit_per_task(problem: PolicyProblem, seed: int = 0, **options) -> FittedController:
    """Textbook per-task REINFORCE loss."""
    return fit_controller(problem, seed, loss="per-task", **options)
