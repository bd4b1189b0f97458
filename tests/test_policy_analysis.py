"""Task2Sim's premise, measured: Task2Vec similarity vs reward-row correlation over task pairs."""

import numpy as np
import pytest

from t2s_lib.policy import published_problem
from t2s_lib.policy.analysis import premise_pairs, premise_test, reward_row_correlation, similarity_vs_reward_correlation, task_similarity


def test_premise_spearman_is_one_when_monotone():
    """Non-negative 'Task2Vec' vectors whose cosine is an increasing affine function of the reward
    rows' correlation (unit-norm centred parts + a shared constant block), and reward rows on
    different scales and levels: the premise holds perfectly, Spearman = 1."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(8, 256))
    z -= z.mean(axis=1, keepdims=True)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    vectors = np.hstack([z + 1.0, np.ones((8, 64))])  # > 0; v_i.v_j = corr_ij + 320 = |v|^2 - 1 + corr_ij
    rows = 40 + rng.uniform(1, 5, size=(8, 1)) * z
    sim, corr = task_similarity(vectors), reward_row_correlation(rows)
    iu = np.triu_indices(8, 1)
    assert np.all(np.diff(corr[iu][np.argsort(sim[iu])]) > 0)  # the construction is monotone
    result = premise_test(sim, corr, permutations=499)
    assert result.spearman == pytest.approx(1.0)
    assert result.p_value < 0.01
    reversed_ = premise_test(sim, -corr, permutations=99)
    assert reversed_.spearman == pytest.approx(-1.0) and reversed_.p_value > 0.9


def test_premise_on_published_data():
    result = similarity_vs_reward_correlation(published_problem(), permutations=199)
    assert result.n_tasks == 20 and result.n_pairs == 190
    assert -1 <= result.spearman <= 1 and 0 < result.p_value <= 1
    pairs = premise_pairs(published_problem())
    assert len(pairs) == 190 and pairs["task2vec_cosine"].between(-1, 1).all()


def test_constant_row_is_a_clear_error():
    from t2s_lib.errors import T2SError

    with pytest.raises(T2SError, match="constant"):
        reward_row_correlation(np.ones((3, 5)))
