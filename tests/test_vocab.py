"""One source for every vocabulary: the implementations accept exactly what vocab.py lists."""

from __future__ import annotations

from seedvr_desktop import vocab
from seedvr_desktop.engine import device
from seedvr_desktop.media.codecs import CODECS
from seedvr_desktop.models import color_fix
from seedvr_desktop.project import model


def test_codecs_match_the_encoder_table() -> None:
    assert tuple(CODECS) == vocab.VIDEO_CODECS


def test_every_colour_fix_is_implemented() -> None:
    assert set(vocab.COLOR_FIXES) == {"none", *color_fix.COLOR_FIXES}
    assert vocab.DEFAULT_COLOR_FIX in vocab.COLOR_FIXES


def test_project_and_engine_accept_the_same_lists() -> None:
    # The project once lacked "lab", which the engine and CLI accepted.
    assert model.COLOR_FIX_MODES == vocab.COLOR_FIXES
    assert set(device.PRECISION_CHOICES) == set(vocab.PRECISIONS)
    assert {p for p in vocab.PRECISIONS if p != "auto"} == set(device._DTYPES)
