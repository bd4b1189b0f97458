import json

import numpy as np
import pytest

from t2s_lib.errors import T2SError
from t2s_lib.published import (
    ALL_TASKS,
    SEEN_TASKS,
    UNSEEN_TASKS,
    load_reward_table,
    load_task2vec_vectors,
    published_reward_table,
)


def test_published_table_shape_and_tasks():
    table = published_reward_table()
    assert table.values.shape == (20, 256)
    assert set(table.tasks) == set(ALL_TASKS)
    assert len(SEEN_TASKS) == 12 and len(UNSEEN_TASKS) == 8


def test_published_vectors():
    vectors = load_task2vec_vectors()
    assert set(vectors) == set(ALL_TASKS)
    for vec in vectors.values():
        assert vec.shape == (9600,)
        assert np.all(vec >= 0) and np.all(np.isfinite(vec))


def _write_table(tmp_path, data):
    path = tmp_path / "rewards.json"
    path.write_text(json.dumps(data))
    return path


def test_missing_task_is_named(tmp_path):
    data = json.loads(json.dumps(published_reward_table().to_dict()))
    del data["USPS"]
    with pytest.raises(T2SError, match="USPS"):
        load_reward_table(_write_table(tmp_path, data), tasks=ALL_TASKS)


def test_missing_key_is_named(tmp_path):
    data = published_reward_table().to_dict()
    del data["SVHN"]["1_1_1_1_1_3_0_1_1"]
    with pytest.raises(T2SError) as info:
        load_reward_table(_write_table(tmp_path, data))
    assert "SVHN" in str(info.value) and "rewards.json" in str(info.value)


def test_non_finite_and_malformed_values(tmp_path):
    data = published_reward_table().to_dict()
    text = json.dumps(data).replace("18.729836851322705", "NaN", 1)
    path = tmp_path / "nan.json"
    path.write_text(text)
    with pytest.raises(T2SError, match="not a finite number"):
        load_reward_table(path)
    data["DTD"]["0_0_0_0_0_1_0_0_0"] = "high"
    with pytest.raises(T2SError, match="DTD"):
        load_reward_table(_write_table(tmp_path, data))


def test_unknown_task_lookup():
    with pytest.raises(T2SError, match="unknown task 'ImageNet'"):
        published_reward_table().row("ImageNet")


def test_vectors_of_wrong_length(tmp_path):
    path = tmp_path / "v.npz"
    np.savez(path, task_names=np.array(["A"]), A__hessian=np.ones(100, np.float32), A__scale=np.ones(100, np.float32))
    with pytest.raises(T2SError, match="length 100, expected 9600"):
        load_task2vec_vectors([path])
    np.savez(path, task_names=np.array(["A"]), A__hessian=np.full(9600, np.inf, np.float32))
    with pytest.raises(T2SError, match="non-finite"):
        load_task2vec_vectors([path])
