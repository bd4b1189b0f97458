"""Measured selection (``measured`` variant) and its report helpers, on the published table."""

import json

import numpy as np
import pytest

from t2s_lib.cli import main as cli_main
from t2s_lib.errors import T2SError
from t2s_lib.policy import METHODS, published_problem, run_variant
from t2s_lib.policy.measured import (
    DEFAULT_CONFIG,
    MeasuredConfig,
    RowPrior,
    design_study,
    fit_measured,
    select,
    table_measure,
)
from t2s_lib.policy.measured_report import k_curve_table, optimism_curve, selection_cost
from t2s_lib.policy.problem import PolicyProblem
from t2s_lib.published import RewardTable

SMALL_GRID = [
    MeasuredConfig(model="walsh1", acquisition="greedy"),
    MeasuredConfig(model="walsh2", acquisition="ucb", kappa=2.0),
    MeasuredConfig(model="empirical", acquisition="ei", final="model"),
]


@pytest.fixture(scope="module")
def problem():
    return published_problem()


def _with_unseen_rows(problem, fill):
    table = problem.table
    values = table.values.copy()
    rows = [table.task_index(t) for t in problem.unseen]
    values[rows] = fill(values[rows])
    return PolicyProblem(RewardTable(table.tasks, table.keys, values), problem.vectors, problem.seen, problem.unseen)


def test_full_budget_is_the_oracle(problem):
    measured, _ = run_variant("measured", problem, [0], options={"budget": 256})
    oracle, _ = run_variant("oracle", problem, [0])
    assert measured["per_task"]["0"] == pytest.approx(oracle["per_task"]["0"], abs=0)
    assert measured["seen_mean"] == pytest.approx(32.60, abs=0.005)
    assert measured["unseen_mean"] == pytest.approx(61.62, abs=0.005)


@pytest.mark.parametrize("budget", [0, -1, 257, 2.5, True])
def test_invalid_budget_is_a_clear_error(problem, budget):
    with pytest.raises(T2SError) as err:
        fit_measured(problem, budget=budget)
    assert "budget" in err.value.problem and "--budget" in err.value.fix


def test_more_budget_never_lowers_the_best_measured_value(problem):
    seen_table = problem.table.subset(problem.seen)
    for cfg in SMALL_GRID + [DEFAULT_CONFIG]:
        prior = RowPrior.fit(seen_table.values[1:], seen_table.keys, cfg)
        for task in ("CropDisease", "PacsS", "FMD"):
            row = problem.table.row(task)
            long = select(prior, lambda cols: [row[j] for j in cols], 24, cfg)
            best = -np.inf
            for k in range(1, 25):
                short = select(prior, lambda cols: [row[j] for j in cols], k, cfg)
                assert short.measured == long.measured[:k]  # the measured sequence does not depend on K
                observed = max(short.values)
                assert observed >= best
                best = observed
                if cfg.final == "observed":
                    assert row[short.chosen[k]] == observed


def test_deterministic_for_a_seed(problem):
    a, _ = run_variant("measured", problem, [3], options={"budget": 8})
    b, _ = run_variant("measured", problem, [3], options={"budget": 8})
    assert a["predictions"] == b["predictions"] and a["measured"] == b["measured"] and a["per_task"] == b["per_task"]
    # Measured selection is better than the best fixed setting and below the oracle.
    assert 29.89 < a["seen_mean"] <= 32.61


def test_selection_never_reads_unseen_rows(problem):
    """Unseen rows scrambled or NaN: the chosen configuration, its seen-LOO scores, the prior and
    every seen-task measurement are unchanged (the selection reads seen rows only)."""
    fitted = fit_measured(problem, budget=4, grid=SMALL_GRID)
    frame, chosen = design_study(problem, SMALL_GRID, budgets=(1, 4))
    rng = np.random.default_rng(0)
    for other in (_with_unseen_rows(problem, lambda v: rng.permutation(v.T).T), _with_unseen_rows(problem, lambda v: v * np.nan)):
        refit = fit_measured(other, budget=4, grid=SMALL_GRID)
        assert refit.config == fitted.config
        assert [s for _, s in refit.selection] == [s for _, s in fitted.selection]
        assert np.all(np.isfinite([s for _, s in refit.selection]))
        np.testing.assert_array_equal(refit.prior_for(None).cov, fitted.prior_for(None).cov)
        a, b = fitted.predict(problem.seen), refit.predict(problem.seen)
        np.testing.assert_array_equal(a.indices, b.indices)
        assert a.extras["measured"] == b.extras["measured"]
        frame2, chosen2 = design_study(other, SMALL_GRID, budgets=(1, 4))
        assert chosen2 == chosen and frame2.equals(frame)


def test_measure_callable_is_the_only_access_to_a_new_task(problem):
    """Prediction for a task goes through measure(task, keys) and asks for exactly K settings."""
    calls = []
    lookup = table_measure(problem.table)

    def measure(task, keys):
        calls.append((task, tuple(keys)))
        return lookup(task, keys)

    fitted = fit_measured(problem, budget=5, measure=measure)
    pred = fitted.predict(["AID"])
    asked = [k for task, keys in calls for k in keys]
    assert {task for task, _ in calls} == {"AID"} and len(asked) == 5 == len(set(asked))
    assert pred.extras["measured"]["AID"] == asked
    assert pred.keys(problem)["AID"] in asked


def test_noisy_table_measure_is_fixed_per_cell(problem):
    m = table_measure(problem.table, noise_sd=1.0, seed=1)
    a, b = m("CUB", ["1_1_1_1_1_1_0_0_1"]), m("CUB", ["1_1_1_1_1_1_0_0_1"])
    assert a == b and a["1_1_1_1_1_1_0_0_1"] != problem.table.reward("CUB", "1_1_1_1_1_1_0_0_1")


def test_k_curve_table_matches_run_variant(problem):
    table = k_curve_table(problem, budgets=(2, 5))
    for k in (2, 5):
        summary, _ = run_variant("measured", problem, [0], options={"budget": k}, loo_seeds=[0])
        assert table.loc[k, "seen"] == pytest.approx(summary["seen_mean"], abs=1e-12)
        assert table.loc[k, "unseen"] == pytest.approx(summary["unseen_mean"], abs=1e-12)
        assert table.loc[k, "loo_all"] == pytest.approx(summary["loo"]["mean"], abs=1e-12)


def test_k_curve_figure(problem):
    import matplotlib

    matplotlib.use("Agg")
    from t2s_lib.policy.plots import plot_k_curve

    table = k_curve_table(problem, budgets=(1, 2, 4), loo=False)
    fig = plot_k_curve(table, {"best-fixed": (29.89, 55.26, 39.52), "oracle": (32.60, 61.62, 44.21)})
    assert len(fig.axes) == 2  # seen, unseen (no LOO column)


def test_partial_table_caps_the_budget_and_uses_main_effects(problem):
    """A study table with 24 of the 256 settings: main effects still apply, K <= 24."""
    rng = np.random.default_rng(5)
    cols = np.sort(rng.choice(256, size=24, replace=False))
    table = problem.table
    sub = PolicyProblem(RewardTable(table.tasks, tuple(table.keys[j] for j in cols), table.values[:, cols]),
                        problem.vectors, problem.seen, problem.unseen, "partial")
    fitted = fit_measured(sub, budget=6)
    assert fitted.config.model == "walsh1"  # walsh3 needs 93 coefficients: adapted to the table
    summary, _ = run_variant("measured", sub, [0], options={"budget": 24})
    oracle, _ = run_variant("oracle", sub, [0])
    assert summary["per_task"] == oracle["per_task"]
    with pytest.raises(T2SError, match="exceeds the 24 settings"):
        fit_measured(sub, budget=25)
    four = PolicyProblem(RewardTable(table.tasks, tuple(table.keys[j] for j in cols[:4]), table.values[:, cols[:4]]),
                         problem.vectors, problem.seen, problem.unseen, "four")
    assert fit_measured(four).budget == 4 and fit_measured(four).config.model == "empirical"
    curve = k_curve_table(four, budgets=(1, 2, 4, 8, 16))
    assert list(curve.index) == [1, 2, 4]


def test_summary_json_and_cli_errors(tmp_path, capsys):
    out = tmp_path / "m"
    assert cli_main(["policy", "train", "--variant", "measured", "--budget", "3", "--seeds", "0", "--loo", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    for key in ("variant", "seeds", "seen_mean", "unseen_mean", "seen_per_seed", "unseen_per_seed", "predictions", "per_task",
                "loo", "budget", "measured", "selected_config", "selection_loo_seen"):
        assert key in summary, key
    assert summary["budget"] == 3 and summary["options"] == {"budget": 3}
    assert set(summary["measured"]["0"]) == set(published_problem().all_tasks)
    assert all(len(keys) == 3 for keys in summary["measured"]["0"].values())
    assert set(summary["loo"]["per_task"]["0"]) == set(published_problem().all_tasks)
    assert "budget K = 3" in capsys.readouterr().out

    for argv, message in (
        (["--variant", "reward-kernel", "--budget", "4"], "--budget applies to the measured variant"),
        (["--variant", "measured", "--budget", "300"], "exceeds the 256 settings"),
        (["--variant", "measured", "--budget", "0"], "must be a positive integer"),
    ):
        bad = tmp_path / "bad"
        assert cli_main(["policy", "train", *argv, "--out", str(bad)]) == 2
        err = capsys.readouterr().err
        assert message in err and "fix" in err
        assert not bad.exists()


def test_optimism_is_zero_without_noise_and_positive_with_it(problem):
    curve = optimism_curve(problem, noise_sds=(0.0, 2.0), budgets=(1, 8), repeats=2, tasks=problem.seen[:6])
    assert curve.loc[(0.0, 8), "optimism"] == pytest.approx(0.0, abs=1e-12)
    assert curve.loc[(0.0, 8), "loss"] == pytest.approx(0.0, abs=1e-12)
    assert curve.loc[(2.0, 8), "optimism"] > 0.5  # choosing the best of 8 noisy cells credits the noise


def test_selection_cost_numbers():
    c = selection_cost(8, 5_000)
    assert c["measured_selection"] == 40_000
    assert c["task2vec_embedding"] == pytest.approx(1.8 / 4.1 * (5_000 + 3 * 10_000))
    assert c["pretraining"] == 40_000 * 100 * 3
    assert c["measured_over_pretraining"] == pytest.approx(40_000 / 12e6)


def test_measured_is_registered():
    assert METHODS.get("measured") is fit_measured
