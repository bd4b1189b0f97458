"""The cpu proxy protocol's training pieces: the narrow backbone, the in-memory data path, the
validation split by 3D model, recipe flags that reach torchrun jobs, and the capped local runner."""

from __future__ import annotations

import json
import time

import pytest
import torch

from t2s_lib.errors import T2SError
from t2s_lib.train import PretrainConfig, load_checkpoint, pretrain
from t2s_lib.train.toy import make_toy_image_set


@pytest.fixture(scope="module")
def toy_set(tmp_path_factory):
    return make_toy_image_set(tmp_path_factory.mktemp("toy") / "set", classes=3, per_class=12, size=32, seed=1)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, lib):
    """A real rendered set (3 classes with several 3D models each) and its manifest."""
    from t2s_lib.render import RenderJob, run_render_job

    job = RenderJob.create("1_0_0_0_0_1_0_0_0", 60, 16, classes=3, class_rule="most_models", msaa=0, seed=0, workers=1)
    return run_render_job(job, tmp_path_factory.mktemp("rendered") / "set", progress=False)


def _cfg(data, out, **kw) -> PretrainConfig:
    base = dict(data=str(data), out=str(out), arch="resnet10t_w32", epochs=2, batch_size=8, img_size=32, workers=0,
                warmup_epochs=0, device="cpu", progress=False, seed=5, auto_augment=None, mixup=0.0, cutmix=0.0,
                smoothing=0.0, drop_path=0.0, crop_scale_min=0.35)
    base.update(kw)
    return PretrainConfig(**base)


def test_half_width_resnet10t_is_a_timm_model_with_four_stages():
    import warnings

    from t2s_lib.train.models import create_backbone

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "no pretrained configuration" warning from timm
        model = create_backbone("resnet10t_w32", 20)
        stages = create_backbone("resnet10t_w32", features_only=True, out_indices=(1, 2, 3, 4))
    assert 1.2e6 < sum(p.numel() for p in model.parameters()) < 1.3e6
    shapes = [tuple(t.shape[1:]) for t in stages.eval()(torch.zeros(1, 3, 32, 32))]
    assert shapes == [(32, 8, 8), (64, 4, 4), (128, 2, 2), (256, 1, 1)]


@pytest.mark.parametrize("arch,blocks,width", [("resnet10t_w16", [1, 1, 1, 1], 128),
                                               ("resnet18t_w32", [2, 2, 2, 2], 256), ("resnet34t_w32", [3, 4, 6, 3], 256)])
def test_scaling_backbones_have_their_block_counts_and_widths(arch, blocks, width):
    from t2s_lib.train.models import create_backbone

    model = create_backbone(arch, 20)
    assert [len(getattr(model, f"layer{i}")) for i in range(1, 5)] == blocks
    assert model.layer4[0].conv1.out_channels == width  # ResNet's is 512


def test_memory_set_indexes_like_image_folder(toy_set):
    from torchvision.datasets import ImageFolder

    from t2s_lib.train.data import MemoryImageSet

    mem, folder = MemoryImageSet(toy_set), ImageFolder(str(toy_set))
    assert mem.classes == folder.classes and mem.targets == folder.targets and len(mem) == len(folder)
    image, target = mem[7]
    assert image.dtype == torch.uint8 and tuple(image.shape) == (3, 32, 32) and target == folder.targets[7]
    import numpy as np

    assert torch.equal(image, torch.from_numpy(np.array(folder[7][0])).permute(2, 0, 1))


def test_memory_path_learns_and_is_deterministic(toy_set, tmp_path):
    a = load_checkpoint(pretrain(_cfg(toy_set, tmp_path / "a", data_mode="memory", epochs=3, lr=3e-3, monitor_images=24)))
    b = load_checkpoint(pretrain(_cfg(toy_set, tmp_path / "b", data_mode="memory", epochs=3, lr=3e-3, monitor_images=24)))
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    records = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["monitor_loss"] < records[0]["monitor_loss"]


def test_memory_path_refuses_randaugment_naming_the_fix(toy_set, tmp_path):
    with pytest.raises(T2SError, match="auto_augment"):
        pretrain(_cfg(toy_set, tmp_path / "r", data_mode="memory", auto_augment="rand-m9-mstd0.5-inc1"))
    assert not (tmp_path / "r").exists()


def test_profile_refuses_memory_path_with_randaugment(tmp_path):
    import yaml

    from t2s_lib.profiles import load_profile

    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"name": "p", "pretrain": {"recipe": {"data_mode": "memory"}}}))
    with pytest.raises(T2SError, match="RandAugment"):
        load_profile(path)


def test_validation_by_model_holds_out_whole_models(rendered, tmp_path):
    from torchvision.datasets import ImageFolder

    from t2s_lib.train.data import model_ids
    from t2s_lib.train.loop import validation_split

    folder = ImageFolder(str(rendered))
    models = model_ids(rendered, folder.samples)
    train, val = validation_split(folder.targets, 0.2, seed=0, groups=models)
    assert val and sorted(train + val) == list(range(len(folder)))
    assert not {models[i] for i in train} & {models[i] for i in val}  # no model on both sides
    for c in set(folder.targets):  # every class keeps training models and loses at least 20 % of its images
        in_class = [i for i in range(len(folder)) if folder.targets[i] == c]
        held = [i for i in in_class if i in set(val)]
        assert 0.2 * len(in_class) <= len(held) < len(in_class)
    # the same seed gives the same split; another seed another one
    assert validation_split(folder.targets, 0.2, seed=0, groups=models) == (train, val)
    # training with it reports validation accuracy of unseen models
    pretrain(_cfg(rendered, tmp_path / "run", img_size=16, epochs=1, val_fraction=0.2, val_by="model", data_mode="memory"))
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["num_val_images"] == len(val)
    assert "val_acc" in json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])


def test_validation_by_model_needs_the_manifest(toy_set, tmp_path):
    with pytest.raises(T2SError, match="manifest.jsonl"):
        pretrain(_cfg(toy_set, tmp_path / "run", val_fraction=0.2, val_by="model"))
    assert not (tmp_path / "run").exists()


def test_every_recipe_field_is_a_flag_and_round_trips(toy_set, tmp_path):
    """What a torchrun job is given (every field, None as 'none') rebuilds the same config."""
    import argparse

    from t2s_lib.cli.pretrain import build_config, config_flag_names, register

    cfg = _cfg(toy_set, tmp_path / "o", data_mode="memory", val_by="model", val_fraction=0.2, color_jitter=0.1,
               max_images=None)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    values = cfg.to_dict()
    argv = ["pretrain", str(toy_set), "--out", cfg.out, "--arch", cfg.arch, "--device", "cpu", "--no-progress"]
    for key in config_flag_names():
        argv += [f"--{key.replace('_', '-')}", "none" if values[key] is None else str(values[key])]
    rebuilt = build_config(parser.parse_args(argv))
    assert rebuilt.to_dict() == cfg.to_dict()


class _Handle:
    def __init__(self, log, name, fail):
        self.log, self.name, self.fail, self.t_end = log, name, fail, time.monotonic() + 0.05

    def done(self):
        if time.monotonic() >= self.t_end and self.name in self.log["running"]:
            self.log["running"].discard(self.name)
        return time.monotonic() >= self.t_end

    def result(self):
        if self.fail:
            raise RuntimeError(f"T2SError: cell {self.name} broke")
        return {}


class _Executor:
    """Stands in for submitit's local executor: records how many jobs run at once."""

    def __init__(self):
        self.log = {"running": set(), "peak": 0}

    def submit(self, job):
        self.log["running"].add(job.cell.name)
        self.log["peak"] = max(self.log["peak"], len(self.log["running"]))
        return _Handle(self.log, job.cell.name, fail=job.cell.seed == 3)


def test_local_runner_keeps_the_cap_and_collects_failures():
    from t2s_lib.rewards.build import CellJob, _run_capped
    from t2s_lib.rewards.spec import Cell

    jobs = [CellJob("t", Cell("0_0_0_0_0_1_0_0_0", s)) for s in range(7)]
    ex = _Executor()
    failures, _ = _run_capped(jobs, ex, 2, log=lambda *_: None, poll_s=0.01)
    assert ex.log["peak"] == 2
    assert list(failures) == ["0_0_0_0_0_1_0_0_0/s3"] and "broke" in failures["0_0_0_0_0_1_0_0_0/s3"]
