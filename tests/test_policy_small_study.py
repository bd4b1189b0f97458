"""The policy stage on a small study's own run folder (reward table + embeddings), built here
from the published rows and vectors of five tasks and four settings."""

import json

import numpy as np
import pytest

from t2s_lib.errors import T2SError
from t2s_lib.profiles import profile_from_dict
from t2s_lib.policy.small_study import run_small_study_policy, small_study_tables, study_problem
from t2s_lib.published import load_task2vec_vectors, published_reward_table
from t2s_lib.task2vec.embed import Embedding

SEEN = ["SVHN", "Sketch", "DTD"]
UNSEEN = ["USPS", "PacsS"]
KEYS = ["0_0_0_0_0_1_0_0_0", "1_1_1_1_1_3_0_1_1", "1_1_1_1_1_1_0_0_1", "0_0_0_0_0_1_0_0_1"]


@pytest.fixture()
def run_profile(tmp_path):
    table = published_reward_table()
    (tmp_path / "rewards").mkdir()
    rewards = {t: {k: table.reward(t, k) for k in KEYS} for t in SEEN + UNSEEN}
    (tmp_path / "rewards" / "reward_table.json").write_text(json.dumps(rewards))
    vectors = load_task2vec_vectors()
    for t in SEEN + UNSEEN:
        Embedding(hessian=vectors[t].astype(np.float32), scale=np.ones(9600, np.float32), meta={"task": t}).save(tmp_path / "task2vec" / f"{t}.npz")
    return profile_from_dict({"name": "test", "run_dir": str(tmp_path), "tasks": {"seen": SEEN, "unseen": UNSEEN}})


def test_small_study_problem_and_tables(run_profile):
    problem = study_problem(run_profile)
    assert problem.seen == tuple(SEEN) and problem.unseen == tuple(UNSEEN)
    assert set(problem.table.keys) == set(KEYS)
    result = run_small_study_policy(run_profile)
    methods, per_task = small_study_tables(result)
    oracle = methods.loc["oracle"]
    # the oracle is the best of the four settings for each task
    table = published_reward_table()
    expected = np.mean([max(table.reward(t, k) for k in KEYS) for t in UNSEEN])
    assert oracle["unseen"] == pytest.approx(expected)
    for method in methods.index:
        assert methods.loc[method, "unseen"] <= oracle["unseen"] + 1e-9
    assert set(per_task["reward-kernel setting"]) <= set(KEYS)
    # a method that picks one setting for every task is named for what it is at this scale
    (label,) = [m for m in methods.index if m.startswith("reward-kernel")]
    loo = result["summaries"]["reward-kernel"]["loo"]["predictions"]["0"].values()
    one = len(set(per_task["reward-kernel setting"]) | set(loo)) == 1
    assert ("here)" in label) == one


def test_small_study_missing_stage_is_named(tmp_path):
    prof = profile_from_dict({"name": "x", "run_dir": str(tmp_path), "tasks": {"seen": ["digits", "mnist"], "unseen": ["faces"]}})
    with pytest.raises(T2SError, match="notebook 03"):
        study_problem(prof)
