"""Pre-training: loss goes down, resume is exact, bad input fails clearly with nothing half-written."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from t2s_lib.errors import T2SError
from t2s_lib.train import PretrainConfig, load_backbone, load_checkpoint, pretrain
from t2s_lib.train.toy import make_toy_image_set


def _cfg(data, out, **kw) -> PretrainConfig:
    base = dict(data=str(data), out=str(out), arch="resnet10t", epochs=2, batch_size=16, img_size=32, workers=0,
                warmup_epochs=0, device="cpu", progress=False, seed=3)
    base.update(kw)
    return PretrainConfig(**base)


@pytest.fixture(scope="module")
def toy_set(tmp_path_factory):
    return make_toy_image_set(tmp_path_factory.mktemp("toy") / "set", classes=4, per_class=16, size=32, seed=0)


def test_pretraining_lowers_clean_loss(toy_set, tmp_path):
    # paper recipe (RandAugment, mixup/cutmix, smoothing, drop path), but a short, hot schedule
    cfg = _cfg(toy_set, tmp_path / "run", epochs=4, lr=3e-3, monitor_images=64)
    ckpt = pretrain(cfg)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1, 2, 3, 4]
    assert records[-1]["monitor_loss"] < records[0]["monitor_loss"] - 0.05
    saved = load_checkpoint(ckpt)
    assert saved["complete"] and saved["optimizer"] is None and saved["classes"] == ["c000", "c001", "c002", "c003"]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["arch"] == "resnet10t"
    # a finished run is returned as is
    assert pretrain(cfg) == ckpt


def test_resumed_run_equals_uninterrupted(toy_set, tmp_path):
    full = load_checkpoint(pretrain(_cfg(toy_set, tmp_path / "a", max_images=32)))
    part = _cfg(toy_set, tmp_path / "b", stop_after=1, max_images=32)
    first = load_checkpoint(pretrain(part))
    assert first["epoch"] == 1 and not first["complete"]
    part.stop_after = None
    resumed = load_checkpoint(pretrain(part))
    assert resumed["epoch"] == 2
    for k, v in full["model"].items():
        assert torch.equal(v, resumed["model"][k]), k
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]


def test_batched_augmentation_and_fused_adamw_resume_exactly(toy_set, tmp_path):
    """The cpu recipe's fast path (batched crop/flip, fused AdamW) keeps the resume guarantee."""
    fast = dict(max_images=32, data_mode="memory", auto_augment=None, mixup=0.0, cutmix=0.0, augment="batched",
                fused_optimizer=True)
    full = load_checkpoint(pretrain(_cfg(toy_set, tmp_path / "a", **fast)))
    part = _cfg(toy_set, tmp_path / "b", stop_after=1, **fast)
    pretrain(part)
    part.stop_after = None
    resumed = load_checkpoint(pretrain(part))
    for k, v in full["model"].items():
        assert torch.equal(v, resumed["model"][k]), k
    slow = load_checkpoint(pretrain(_cfg(toy_set, tmp_path / "c", **{**fast, "augment": "per-image"})))
    assert any(not torch.equal(v, slow["model"][k]) for k, v in full["model"].items())  # another recipe
    with pytest.raises(T2SError, match="augment 'batched' needs data_mode 'memory'"):
        _cfg(toy_set, tmp_path / "d", augment="batched").check()


def test_batch_crop_flip_draws_torchvision_boxes():
    from t2s_lib.train.data import BatchCropFlip

    torch.manual_seed(0)
    crop = BatchCropFlip(32, scale=(0.35, 1.0))
    boxes = crop.boxes(4000, 32, 32)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    area = w * h / 1024
    assert boxes.min() >= 0 and boxes.max() <= 32 and area.min() >= 0.32 and area.max() <= 1.0
    assert (w / h).min() >= 0.7 and (w / h).max() <= 1.4  # log-uniform ratio in [3/4, 4/3], rounded
    images = [(torch.full((3, 32, 32), 128, dtype=torch.uint8), i % 3) for i in range(8)]
    x, y = crop(images)
    assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32 and y.tolist() == [0, 1, 2, 0, 1, 2, 0, 1]
    # a flat grey image stays flat grey after any crop and flip: normalised (128/255 - mean) / std per channel
    assert torch.allclose(x.std(dim=(2, 3)), torch.zeros(8, 3), atol=1e-4)


def test_resume_refuses_other_settings_and_architecture(toy_set, tmp_path):
    pretrain(_cfg(toy_set, tmp_path / "r", stop_after=1))
    with pytest.raises(T2SError, match="resnet18"):
        pretrain(_cfg(toy_set, tmp_path / "r", arch="resnet18"))
    with pytest.raises(T2SError, match="lr"):
        pretrain(_cfg(toy_set, tmp_path / "r", lr=0.5))
    with pytest.raises(T2SError, match="resnet50"):
        load_backbone(tmp_path / "r" / "checkpoint.pt", arch="resnet50")


def test_resume_refuses_other_class_count(toy_set, tmp_path):
    pretrain(_cfg(toy_set, tmp_path / "r", stop_after=1))
    other = tmp_path / "fewer"
    shutil.copytree(toy_set, other)
    shutil.rmtree(other / "c003")
    with pytest.raises(T2SError, match="3 classes"):
        pretrain(_cfg(other, tmp_path / "r"))


def test_empty_image_set_and_gpu_on_cpu_write_nothing(tmp_path):
    empty = tmp_path / "empty"
    (empty / "c0").mkdir(parents=True)
    with pytest.raises(T2SError, match="empty"):
        pretrain(_cfg(empty, tmp_path / "out"))
    with pytest.raises(T2SError, match="does not exist"):
        pretrain(_cfg(tmp_path / "missing", tmp_path / "out"))
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_on_cpu_machine_is_a_clear_error(toy_set, tmp_path):
    from t2s_lib.cli import main

    rc = main(["pretrain", str(toy_set), "--out", str(tmp_path / "out"), "--device", "cuda", "--arch", "resnet10t"])
    assert rc == 2 and not (tmp_path / "out").exists()


def test_cli_pretrain_with_profile(toy_set, tmp_path):
    from t2s_lib.cli import main

    rc = main(["pretrain", str(toy_set), "--out", str(tmp_path / "cli"), "--profile", "smoke", "--epochs", "1",
               "--workers", "0", "--no-progress", "--device", "cpu",
               # the toy set has no manifest.jsonl, so hold out images rather than models
               "--val-by", "image"])
    assert rc == 0
    cfg = json.loads((tmp_path / "cli" / "config.json").read_text())
    assert cfg["epochs"] == 1 and cfg["arch"] == "resnet10t_w32" and cfg["val_by"] == "image"


@pytest.mark.slow
def test_torchrun_two_cpu_processes(toy_set, tmp_path):
    """The same entry point under torchrun (gloo on CPU): one checkpoint, global batch split over ranks."""
    import subprocess
    import sys
    from pathlib import Path

    torchrun = Path(sys.executable).with_name("torchrun")
    out = tmp_path / "ddp"
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "t2s_lib.train", str(toy_set), "--out", str(out),
           "--arch", "resnet10t", "--epochs", "1", "--batch-size", "16", "--img-size", "32", "--workers", "0",
           "--warmup-epochs", "0", "--device", "cpu", "--no-progress"]
    subprocess.run(cmd, check=True, timeout=300, capture_output=True)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["world_size"] == 2 and cfg["per_process_batch"] == 8
    assert load_checkpoint(out)["complete"]


def test_paper_schedule_and_weight_decay_groups():
    import math

    from t2s_lib.train import create_backbone
    from t2s_lib.train.loop import make_optimizer

    cfg = PretrainConfig()  # published defaults: 100 epochs, warmup 20 from 1e-6, min lr 1e-5, AdamW 1e-3 / 0.05
    opt, sched = make_optimizer(create_backbone("resnet10t", 10), cfg)
    assert {g["weight_decay"] for g in opt.param_groups} == {0.0, 0.05}  # no decay on biases / norm weights

    def lr_at(epoch):
        sched.step(epoch)
        return opt.param_groups[0]["lr"]

    assert lr_at(0) == pytest.approx(1e-6)
    assert lr_at(10) == pytest.approx(1e-6 + 10 / 20 * (1e-3 - 1e-6))
    for t in (20, 50, 99):
        assert lr_at(t) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + math.cos(math.pi * t / 100)))
    assert lr_at(20) == pytest.approx(0.905 * 1e-3, rel=2e-3)


def test_slurm_launcher_runs_the_job_through_submitit(toy_set, tmp_path):
    """--slurm builds a submitit executor; submitit's in-process 'debug' cluster runs the same job."""
    from t2s_lib.train.slurm import submit_slurm

    cfg = _cfg(toy_set, tmp_path / "slurm", epochs=1, max_images=16)
    job = submit_slurm(cfg, gpus_per_node=0, cpus_per_task=1, cluster="debug")
    assert job.result() == str(tmp_path / "slurm" / "checkpoint.pt")
    assert load_checkpoint(job.result())["complete"]
