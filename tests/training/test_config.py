from __future__ import annotations

from pathlib import Path

import pytest

from seedvr_desktop.errors import UserError
from seedvr_desktop.training.config import DEFAULT_STAGES, Stage, TrainConfig, load_config


def test_defaults_are_the_progressive_stages() -> None:
    cfg = load_config(None)
    assert [(s.frames, s.size) for s in cfg.stages] == [(5, 256), (9, 512), (21, 768)]
    assert cfg.ema_decay == 0.9998 and cfg.cond_noise_scale == 0.25
    assert cfg.stage_at(0)[0] == 0
    assert cfg.stage_at(DEFAULT_STAGES[0].steps)[0] == 1
    with pytest.raises(ValueError):
        cfg.stage_at(cfg.total_steps)


def test_toml_and_flag_override(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text("lr = 3e-5\nbatch = 2\n[[stages]]\nframes = 1\nsize = 64\nsteps = 7\n"
                    "[[stages]]\nframes = 9\nsize = 128\nsteps = 3\n")
    cfg = load_config(path)
    assert cfg.lr == 3e-5 and cfg.batch == 2
    assert cfg.stages == (Stage(1, 64, 7), Stage(9, 128, 3))
    one = load_config(path, {"steps": 11, "lr": None, "batch": 6})
    assert one.stages == (Stage(1, 64, 11),) and one.batch == 6 and one.lr == 3e-5


@pytest.mark.parametrize("text, needle", [
    ("lrr = 1\n", "unknown key 'lrr'"),
    ("[[stages]]\nframes = 6\nsize = 64\nsteps = 1\n", "4n+1"),
    ("[[stages]]\nframes = 5\nsize = 100\nsteps = 1\n", "multiple of 16"),
    ("[[stages]]\nframes = 5\nsize = 64\nsteps = 0\n", "at least one step"),
    ("[[stages]]\nframes = 5\nsize = 64\n", "no 'steps'"),
    ("batch = 'x'\n", "batch must be a int"),
    ("precision = 'fp8'\n", "precision must be one of"),
    ("not toml [", "not valid TOML"),
])
def test_bad_config_is_one_line_error(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UserError) as info:
        load_config(path)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_roundtrip_dict() -> None:
    cfg = TrainConfig(lora_rank=4, stages=(Stage(5, 32, 3),)).validate()
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
