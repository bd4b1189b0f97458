"""Integration with the renderer stage: render a tiny set through notebook 04's path and pre-train on it.

Marked slow (it renders) and skipped when the renderer package is not installed, so this stage's
tests never depend on another stage being finished. It also guards a real crash: building an
optimiser (torch imports triton) after an EGL context exists segfaulted the process.
"""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_render_then_pretrain_in_one_process(tmp_path):
    render = pytest.importorskip("t2s_lib.render", reason="renderer stage (t2s_lib.render) not installed")
    if not hasattr(render, "render_dataset"):
        pytest.skip("t2s_lib.render has no render_dataset yet")
    from t2s_lib.train import describe_image_set, load_checkpoint
    from t2s_lib.train.study import pretrain_settings

    from t2s_lib.profiles import profile_from_dict

    prof = profile_from_dict({"name": "it", "run_dir": str(tmp_path), "seed": 0, "device": "cpu",
                              "pretrain": {"settings": ["all_off"], "render": {"images": 16, "classes": 4, "img_size": 32},
                                           "recipe": {"arch": "resnet10t", "epochs": 1, "batch_size": 8, "img_size": 32,
                                                      "warmup_epochs": 0, "workers": 0}}})
    ckpts = pretrain_settings(prof, progress=False)
    (key, ckpt), = ckpts.items()
    info = describe_image_set(tmp_path / "render" / key)
    assert info["num_images"] == 16 and len(info["classes"]) == 4
    assert load_checkpoint(ckpt)["classes"] == info["classes"]
