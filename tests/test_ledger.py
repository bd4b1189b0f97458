"""The results ledger: identities, adoption instead of recomputation, damaged records, concurrent
appends, budgets, and reward tables measured in slices."""

from __future__ import annotations

import json
import math
import multiprocessing
from pathlib import Path

import pytest

from t2s_lib import ledger as L
from t2s_lib.errors import T2SError

IDENTITY = {"setting": "1_0_0_0_0_1_0_0_1", "seed": 0, "recipe": {"lr": 0.002, "epochs": 30}, "task": "digits",
            "split": "test"}


def _value(v: float = 71.5) -> dict:
    return {"value": v, "seconds": 1.0}


def test_every_part_of_the_identity_changes_the_key(monkeypatch):
    base = L.identity_key("reward.knn", IDENTITY)
    assert base == L.identity_key("reward.knn", json.loads(json.dumps(IDENTITY)))  # order and copies do not matter
    changed = [
        {**IDENTITY, "recipe": {**IDENTITY["recipe"], "lr": 0.001}},
        {**IDENTITY, "seed": 1},
        {**IDENTITY, "task": "faces"},
        {**IDENTITY, "split": "validation"},
    ]
    keys = {L.identity_key("reward.knn", i) for i in changed}
    assert base not in keys and len(keys) == len(changed)
    assert L.identity_key("reward.knn", IDENTITY, numerics=2) != base
    assert L.identity_key("reward.knn_val", IDENTITY) != base


def test_a_held_record_is_adopted_not_recomputed(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return _value(60.0 + len(calls))

    led = L.Ledger(tmp_path)
    assert led.measure("reward.knn", IDENTITY, compute) == _value(61.0)
    assert led.measure("reward.knn", IDENTITY, compute) == _value(61.0)
    assert len(calls) == 1
    # another process (a fresh Ledger object) adopts it too
    assert L.Ledger(tmp_path).measure("reward.knn", IDENTITY, compute) == _value(61.0) and len(calls) == 1
    # --recompute measures again and the newest record wins afterwards
    assert L.Ledger(tmp_path, "recompute").measure("reward.knn", IDENTITY, compute) == _value(62.0)
    assert len(calls) == 2
    assert L.Ledger(tmp_path).lookup("reward.knn", IDENTITY).value == _value(62.0)
    # another identity is measured
    L.Ledger(tmp_path).measure("reward.knn", {**IDENTITY, "seed": 5}, compute)
    assert len(calls) == 3
    rec = L.Ledger(tmp_path).records("reward.knn")[-1]
    assert {"commit", "cpu", "torch", "threads", "date", "cpu_seconds", "wall_seconds"} <= set(rec.provenance)


def test_replay_measures_nothing(tmp_path):
    led = L.Ledger(tmp_path, "replay")
    with pytest.raises(T2SError, match="holds no current reward.knn record"):
        led.measure("reward.knn", IDENTITY, lambda: pytest.fail("replay must not compute"))


def _write_one(tmp_path: Path) -> Path:
    L.Ledger(tmp_path).append("reward.knn", IDENTITY, _value(), L.provenance(0.1, 0.1))
    return tmp_path / "reward.knn.jsonl"


@pytest.mark.parametrize("damage, message", [
    (lambda line: line[: len(line) // 2] + "\n", "not a valid ledger record"),
    (lambda line: json.dumps({k: v for k, v in json.loads(line).items() if k != "provenance"}) + "\n",
     "has no provenance"),
    (lambda line: line.replace('"value":71.5', '"value":171.5'), r"outside 0.0..100.0"),
    (lambda line: line.replace('"seed":0', '"seed":7'), "does not match its identity"),
    (lambda line: line.replace('"kind":"reward.knn"', '"kind":"reward.nope"'), "unknown ledger kind"),
    (lambda line: line.replace('"numerics":1', '"numerics":"one"'), "not a positive integer"),
])
def test_a_damaged_record_names_its_file_and_line(tmp_path, damage, message):
    path = _write_one(tmp_path)
    good = path.read_text()
    path.write_text(good + damage(good))
    with pytest.raises(T2SError, match=message) as err:
        L.Ledger(tmp_path).lookup("reward.knn", IDENTITY)
    assert f"{path}:2" in err.value.problem and "--recompute" in (err.value.fix or "") + "remove" or err.value.fix


def test_a_cut_off_last_line_is_named(tmp_path):
    path = _write_one(tmp_path)
    path.write_text(path.read_text() + '{"format":1,"kind"')
    with pytest.raises(T2SError, match="incomplete"):
        L.Ledger(tmp_path).records("reward.knn")


def test_a_ledger_of_newer_numerics_is_refused_with_its_version(tmp_path):
    path = _write_one(tmp_path)
    rec = json.loads(path.read_text())
    newer = L.get_kind("reward.knn").numerics + 1
    rec.update(numerics=newer, key=L.identity_key("reward.knn", rec["identity"], newer))
    path.write_text(json.dumps(rec) + "\n")
    with pytest.raises(T2SError, match=f"numerics version {newer}"):
        L.Ledger(tmp_path).lookup("reward.knn", IDENTITY)


def test_older_numerics_are_stale_and_never_used(tmp_path, monkeypatch):
    _write_one(tmp_path)
    kind = L.get_kind("reward.knn")
    monkeypatch.setitem(L.KINDS, "reward.knn", L.Kind(kind.name, kind.numerics + 1, kind.fields))
    led = L.Ledger(tmp_path)
    assert led.lookup("reward.knn", IDENTITY) is None
    assert [r.numerics for r in led.stale()] == [kind.numerics]


def _append_many(folder: str, worker: int, n: int) -> None:
    led = L.Ledger(folder)
    for i in range(n):
        led.append("reward.knn", {**IDENTITY, "seed": worker * 10_000 + i, "pad": "x" * 3000}, _value(), {"w": worker})


def test_concurrent_appends_keep_every_record_whole(tmp_path):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(tmp_path), w, 150)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    records = L.Ledger(tmp_path).records("reward.knn")  # every line parses: none torn
    assert len(records) == 450 and len({r.key for r in records}) == 450


def test_the_budget_refuses_a_unit_that_would_not_finish(monkeypatch):
    monkeypatch.delenv(L.DEADLINE_ENV, raising=False)
    L.check_budget("reward cell", estimate_s=1e9)  # no budget: anything starts
    with L.budget(10):
        L.check_budget("reward cell", estimate_s=60)
        with pytest.raises(L.BudgetSpent, match="time budget is spent"):
            L.check_budget("reward cell", estimate_s=11 * 60)
    assert L.DEADLINE_ENV not in __import__("os").environ
    with pytest.raises(T2SError, match="must be positive"):
        with L.budget(0):
            pass


# -- reward tables through the ledger ----------------------------------------------------------------

TIMING = ("seconds", "render_seconds", "pretrain_seconds", "images_per_s", "epoch_seconds", "time", "adopted_from")


def _strip_timing(obj):
    if isinstance(obj, dict):
        return {k: _strip_timing(v) for k, v in obj.items() if k not in TIMING}
    if isinstance(obj, list):
        return [_strip_timing(v) for v in obj]
    return obj


def _ledger_records(folder: Path) -> dict:
    out = {}
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            out[rec["key"]] = (rec["kind"], rec["identity"], _strip_timing(rec["value"]))
    return out


def _counting(monkeypatch):
    """Count the expensive steps of a cell (render, pre-training, 5-NN) while they still run."""
    from t2s_lib.rewards import cells

    counts = {"render": 0, "pretrain": 0, "knn": 0}
    for name, fn in (("render", cells._render), ("pretrain", cells._pretrain), ("knn", cells._knn)):
        def wrapped(*args, _fn=fn, _name=name, **kwargs):
            counts[_name] += 1
            return _fn(*args, **kwargs)
        monkeypatch.setattr(cells, f"_{name}", wrapped)
    return counts


def test_a_table_from_the_ledger_is_replayed_without_rendering_or_training(tiny, tmp_path, monkeypatch):
    from t2s_lib.rewards import build_table, spec_from_profile

    monkeypatch.setenv("T2S_LEDGER", str(tmp_path / "ledger"))
    spec = spec_from_profile(tiny)
    counts = _counting(monkeypatch)
    first = build_table(tmp_path / "a", spec, log=lambda *_: None)
    trained = [c for c in spec.cells() if not c.is_scratch]
    assert counts["pretrain"] == len(trained) and not first.failed  # scratch cells are not pre-trained
    measured = dict(counts)
    # a fresh machine: no run folder, the ledger only, and nothing may be measured
    monkeypatch.setenv("T2S_LEDGER_MODE", "replay")
    second = build_table(tmp_path / "b", spec, log=lambda *_: None)
    assert counts == measured, "the replayed table rendered, trained or evaluated"
    assert sorted(second.replayed) == sorted(first.done) and not second.failed
    assert (tmp_path / "a" / "reward_table.json").read_text() == (tmp_path / "b" / "reward_table.json").read_text()
    assert (tmp_path / "a" / "rewards.csv").read_text() == (tmp_path / "b" / "rewards.csv").read_text()
    from t2s_lib.rewards.analysis import pretrain_curves

    a, b = pretrain_curves(tmp_path / "a", spec), pretrain_curves(tmp_path / "b", spec)
    kept = sorted(c for c in a if "per_s" not in c and "seconds" not in c)
    import pandas as pd

    pd.testing.assert_frame_equal(a[kept], b[kept], check_dtype=False, check_exact=True)


def test_replay_names_a_missing_cell_before_any_work(tiny, tmp_path, monkeypatch):
    from t2s_lib.rewards import build_table, spec_from_profile

    monkeypatch.setenv("T2S_LEDGER_MODE", "replay")
    counts = _counting(monkeypatch)
    with pytest.raises(T2SError, match="holds no current reward.pretrain record for cell"):
        build_table(tmp_path / "t", spec_from_profile(tiny), log=lambda *_: None)
    assert sum(counts.values()) == 0


def test_a_budgeted_build_resumes_to_the_uninterrupted_ledger(tiny, tmp_path, monkeypatch):
    """Stopped by the budget after 2 cells, then continued on a fresh machine (an empty run folder):
    the same records as an uninterrupted build, but for timing fields."""
    from t2s_lib.rewards import build, build_table, spec_from_profile

    spec = spec_from_profile(tiny)
    monkeypatch.setenv("T2S_LEDGER", str(tmp_path / "whole"))
    build_table(tmp_path / "whole_table", spec, log=lambda *_: None)

    monkeypatch.setenv("T2S_LEDGER", str(tmp_path / "sliced"))
    gates = []

    def gate_after_two(kind, ledger=None, estimate_s=None):  # the clock: the third cell does not fit
        gates.append(kind)
        if len(gates) > 2:
            raise L.BudgetSpent("the time budget is spent", "run again")

    monkeypatch.setattr(build, "check_budget", gate_after_two)
    stopped = build_table(tmp_path / "slice1", spec, log=lambda *_: None)
    assert len(stopped.done) == 2 and len(stopped.stopped) == 4 and stopped.stop_reason is not None
    assert not stopped.failed
    monkeypatch.undo()
    monkeypatch.setenv("T2S_LEDGER", str(tmp_path / "sliced"))
    counts = _counting(monkeypatch)
    rest = build_table(tmp_path / "slice2", spec, log=lambda *_: None)  # fresh folder: the ledger carries slice 1
    first_two = [c for c in spec.cells()[:2]]
    assert len(rest.replayed) == 2 and len(rest.done) == len(spec.cells())
    assert counts["pretrain"] == sum(not c.is_scratch for c in spec.cells()[2:]), first_two
    assert _ledger_records(tmp_path / "sliced" / "tiny") == _ledger_records(tmp_path / "whole" / "tiny")
    assert (tmp_path / "slice2" / "reward_table.json").read_text() == \
        (tmp_path / "whole_table" / "reward_table.json").read_text()


# -- Task2Vec vectors through the ledger -------------------------------------------------------------

def test_task2vec_vectors_are_recorded_exactly_and_adopted(tiny, tmp_path, monkeypatch):
    """A vector the ledger holds is returned bit for bit without embedding, and without training the
    profile's probe; another seed, fraction or probe is another identity."""
    import dataclasses

    import numpy as np

    from t2s_lib.task2vec import study as t2v

    prof = dataclasses.replace(tiny, task2vec=dataclasses.replace(
        tiny.task2vec, probe_recipe={"setting": "1_0_0_0_0_1_0_0_0", "images": 16},
        img_size=16, max_samples=60, fisher_samples=32, fisher_batch_size=16, classifier_epochs=1,
        classifier_samples=64, threads=1))
    calls = {"embed": 0, "probe": 0}
    real_embed = t2v.embed_task

    def counting_embed(*args, **kwargs):
        calls["embed"] += 1
        return real_embed(*args, **{**kwargs, "device": "cpu"})

    def no_probe(prof, log=print):  # the random-init probe stands in for the trained one here
        calls["probe"] += 1
        return None

    monkeypatch.setattr(t2v, "embed_task", counting_embed)
    monkeypatch.setattr(t2v, "probe_checkpoint_of", no_probe)
    first = t2v.ProfileEmbedder(prof).embed("digits")
    assert calls == {"embed": 1, "probe": 1}
    monkeypatch.setenv("T2S_LEDGER_MODE", "replay")
    again = t2v.ProfileEmbedder(prof).embed("digits")
    assert calls == {"embed": 1, "probe": 1}, "a held vector was embedded again, or the probe trained"
    assert again.hessian.dtype == np.float32 and np.array_equal(again.hessian, first.hessian)
    assert again.meta["images_used"] == first.meta["images_used"]
    embedder = t2v.ProfileEmbedder(prof)
    ids = [embedder.identity("digits"), embedder.identity("digits", seed=1), embedder.identity("digits", fraction=0.5),
           embedder.identity("faces")]
    assert len({L.identity_key("task2vec.vector", i) for i in ids}) == 4
    other_probe = t2v.ProfileEmbedder(dataclasses.replace(prof, task2vec=dataclasses.replace(
        prof.task2vec, probe_recipe={"setting": "1_0_0_0_0_1_0_0_0", "images": 32})))
    assert other_probe.identity("digits") != embedder.identity("digits")
    with pytest.raises(T2SError, match="holds no current task2vec.vector record"):
        embedder.embed("digits", seed=1)


# -- linear probes of the reward table's backbones ---------------------------------------------------

def _eval_profile(tmp_path, run: str, linear_tasks: list[str]):
    import yaml

    from conftest import TINY_PROFILE
    from t2s_lib.profiles import load_profile

    data = {**TINY_PROFILE, "run_dir": str(tmp_path / run)}
    data["pretrain"] = {**TINY_PROFILE["pretrain"], "settings": ["all_off"]}
    data["evaluate"] = {**TINY_PROFILE["evaluate"], "linear": {"tasks": linear_tasks, "epochs": 1, "hparams": "given",
                                                              "lr": 0.01, "batch_size": 16, "weight_decay": 0.0}}
    path = tmp_path / f"{run}.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_profile(path)


def test_evaluations_are_adopted_and_a_replayed_backbone_is_trained_again_only_when_needed(tiny, tmp_path, monkeypatch):
    from t2s_lib.evaluate import study as ev
    from t2s_lib.rewards.study import build_profile_table, comparison_cells

    monkeypatch.setenv("T2S_LEDGER", str(tmp_path / "ledger"))
    counts = _counting(monkeypatch)
    evals = []
    real = ev.evaluate_backbone
    monkeypatch.setattr(ev, "evaluate_backbone", lambda *a, **k: evals.append(a[1]) or real(*a, **k))

    prof = _eval_profile(tmp_path, "first", ["digits"])
    build_profile_table(prof, log=lambda *_: None)
    rows = ev.run_protocol(prof, comparison_cells(prof, scratch=True), "linear", progress=False)
    assert len(evals) == 2 and {r["backbone"] for r in rows} == {"0_0_0_0_0_1_0_0_0", "scratch"}  # all_off: background fixed, light on
    ev.run_protocol(prof, comparison_cells(prof, scratch=True), "linear", progress=False)
    assert len(evals) == 2, "a held evaluation was measured again"

    # a fresh machine with the ledger only: nothing is trained or evaluated, results.csv has the same values
    trained = counts["pretrain"]
    monkeypatch.setenv("T2S_LEDGER_MODE", "replay")
    fresh = _eval_profile(tmp_path, "fresh", ["digits"])
    build_profile_table(fresh, log=lambda *_: None)
    again = ev.run_protocol(fresh, comparison_cells(fresh, scratch=True), "linear", progress=False)
    assert len(evals) == 2 and counts["pretrain"] == trained
    assert [r["value"] for r in again] == [r["value"] for r in rows]
    assert fresh.layout.results_csv.is_file()

    # a new task on that fresh machine: the replayed cell's backbone is pre-trained again, then evaluated
    monkeypatch.setenv("T2S_LEDGER_MODE", "measure")
    more = _eval_profile(tmp_path, "fresh", ["digits", "faces"])
    ev.run_protocol(more, comparison_cells(more, scratch=True), "linear", progress=False)
    assert counts["pretrain"] == trained + 1 and len(evals) == 4


# -- policy runs -------------------------------------------------------------------------------------

def test_policy_runs_are_recorded_inside_a_study_and_keyed_by_the_problem(tmp_path, monkeypatch):
    import dataclasses

    import numpy as np

    from t2s_lib.policy import runner
    from t2s_lib.policy.problem import published_problem

    problem = published_problem()
    calls = []
    real = runner._run_variant
    monkeypatch.setattr(runner, "_run_variant", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    monkeypatch.delenv(L.PROFILE_ENV, raising=False)
    runner.run_variant("best-fixed", problem, [0])  # outside a study: measured, not recorded
    assert calls == ["best-fixed"] and not list(tmp_path.glob("**/*.jsonl"))
    monkeypatch.setenv("T2S_LEDGER", str(tmp_path))
    monkeypatch.setenv(L.PROFILE_ENV, "tiny")
    first, _ = runner.run_variant("best-fixed", problem, [0], loo_seeds=[0])
    again, _ = runner.run_variant("best-fixed", problem, [0], loo_seeds=[0])
    assert calls == ["best-fixed"] * 2 and again == json.loads(json.dumps(first))
    # another problem (one reward changed) is another run
    values = problem.table.values.copy()
    values[0, 0] += 1.0
    changed = dataclasses.replace(problem, table=dataclasses.replace(problem.table, values=values))
    assert changed.digest() != problem.digest()
    runner.run_variant("best-fixed", changed, [0], loo_seeds=[0])
    assert len(calls) == 3
    assert np.isfinite(first["loo"]["mean"])


def test_the_plan_counts_what_the_ledger_holds(tiny, tmp_path, monkeypatch):
    from t2s_lib.plan import plan_study
    from t2s_lib.rewards import build_table, spec_from_profile

    monkeypatch.setenv("T2S_LEDGER", str(tmp_path / "ledger"))
    spec = spec_from_profile(tiny)
    before = {s.notebook: s for s in plan_study(tiny).stages}
    assert (before["03_rewards"].units_held, before["03_rewards"].units_total) == (0, len(spec.cells()))
    build_table(tmp_path / "t", spec, log=lambda *_: None)
    after = {s.notebook: s for s in plan_study(tiny).stages}["03_rewards"]
    assert after.units_held == len(spec.cells()) and after.train_gflop == 0 < before["03_rewards"].train_gflop


def test_a_grown_file_is_read_from_its_old_end_and_a_rewritten_one_whole(tmp_path):
    led = L.Ledger(tmp_path)
    for seed in range(3):
        led.append("reward.knn", {**IDENTITY, "seed": seed}, _value(50.0 + seed), {"w": 0})
        assert len(led.records("reward.knn")) == seed + 1  # each read after an append parses only the new line
    path = tmp_path / "reward.knn.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + lines[2] + lines[1])  # same size, reordered: read whole
    assert [r.identity["seed"] for r in led.records("reward.knn")] == [0, 2, 1]
    path.write_text(lines[0] + lines[1] + lines[2] + lines[0].replace('"value":50.0', '"value":500.0'))
    with pytest.raises(T2SError, match=rf"{path}:4: .*outside"):
        led.records("reward.knn")


def test_the_pick_step_measures_exactly_the_missing_picks(tiny, tmp_path, monkeypatch):
    """Notebook 09 pre-trains every picked setting on the fresh pick seeds: a second call with one more pick
    measures that pick only; in replay (make figures) a pick the ledger lacks stays unscored, nothing is measured."""
    import dataclasses

    from t2s_lib.policy.live256 import measure_picks

    monkeypatch.setenv("T2S_LEDGER", str(tmp_path / "ledger"))
    prof = dataclasses.replace(tiny.with_run_dir(tmp_path / "runs"),
                               table256=dataclasses.replace(tiny.table256, pick_seeds=[100]))
    counts = _counting(monkeypatch)
    a, b, c = "0_0_0_0_0_1_0_0_1", "1_0_0_0_0_1_0_0_0", "0_1_0_0_0_1_0_0_0"
    first = measure_picks(prof, [a], log=lambda *_: None)
    assert counts["pretrain"] == 1 and list(first.seeds.index) == [a]
    second = measure_picks(prof, [a, b], log=lambda *_: None)
    assert counts["pretrain"] == 2 and sorted(second.seeds.index) == [a, b]
    task = second.values.index[0]
    assert second.score(task, a) == first.score(task, a)
    only_b = measure_picks(prof, [b], log=lambda *_: None)  # another run's picks: a's cells are not built or listed
    assert counts["pretrain"] == 2 and list(only_b.seeds.index) == [b]
    measured = dict(counts)
    monkeypatch.setenv("T2S_LEDGER_MODE", "replay")
    replayed = measure_picks(prof.with_run_dir(tmp_path / "fresh"), [a, b, c], log=lambda *_: None)
    assert counts == measured
    assert sorted(replayed.seeds.index) == [a, b] and math.isnan(replayed.score(task, c))
