import json

import pytest

from t2s_lib.errors import T2SError
from t2s_lib.paths import PUBLISHED_DATA_DIR
from t2s_lib.settings import KEY_FIELDS, PARAMETERS, PRESETS, SimSetting, all_settings, parse_key, resolve_setting


def test_key_fields_are_the_published_sorted_nine():
    assert KEY_FIELDS == (
        "backgr", "blur", "lighting_color", "lighting_dir", "lighting_intensity",
        "materials", "pose_cam", "pose_rot", "pose_scale",
    )
    assert len(PARAMETERS) == 8


def test_256_settings_roundtrip_and_are_distinct():
    settings = all_settings()
    keys = [s.key for s in settings]
    assert len(set(keys)) == 256
    for i, s in enumerate(settings):
        assert s.index == i
        assert parse_key(s.key) == s
        assert SimSetting.from_index(i) == s
        assert s.key.split("_")[6] == "0"  # pose_cam always 0
        assert s.key.split("_")[5] in ("1", "3")  # materials natural / random


def test_enumeration_matches_published_reward_table_order():
    reward_db = json.loads((PUBLISHED_DATA_DIR / "reward_db.json").read_text())
    for task, row in reward_db.items():
        assert list(row) == [s.key for s in all_settings()], task


def test_presets_and_anchor_keys():
    assert PRESETS["domain_randomization"].key == "1_1_1_1_1_3_0_1_1"
    assert PRESETS["all_off"].key == "0_0_0_0_0_1_0_0_0"
    assert resolve_setting("domain_randomization").varied() == list(PARAMETERS)
    assert resolve_setting(0) == PRESETS["all_off"]
    assert resolve_setting("255") == PRESETS["domain_randomization"]
    # index bits: MSB = pose_rot ... LSB = materials
    assert SimSetting.from_index(128) == SimSetting(pose_rot=True)
    assert SimSetting.from_index(1) == SimSetting(materials=True)


@pytest.mark.parametrize(
    "key, words",
    [
        ("1_1_1", "3 fields"),
        ("1_1_1_1_1_3_1_1_1", "pose_cam"),
        ("1_1_1_1_1_2_0_1_1", "materials=2"),
        ("1_1_1_1_1_0_0_1_1", "materials=0"),
        ("2_1_1_1_1_3_0_1_1", "backgr=2"),
        ("a_1_1_1_1_3_0_1_1", "not an integer"),
    ],
)
def test_malformed_keys_raise_clear_errors(key, words):
    with pytest.raises(T2SError) as info:
        parse_key(key)
    assert words in str(info.value)
    assert key in str(info.value)


def test_unknown_setting_spec_names_the_fix():
    with pytest.raises(T2SError) as info:
        resolve_setting("everything-on")
    assert "preset" in str(info.value)
    with pytest.raises(T2SError):
        SimSetting.from_index(256)
    with pytest.raises(T2SError):
        SimSetting().replace(colour=True)
