"""`seedvr-desktop ... | head`: when the reader of our output leaves, exit quietly (0, nothing
on stderr), for every command; a broken pipe that is not stdout's stays an internal error."""

from __future__ import annotations

import subprocess
import sys

import pytest

from seedvr_desktop import cli
from tests.cli_support import subprocess_env


@pytest.mark.parametrize("command", [
    ["models", "list"],
    ["models", "recommend", "--vram", "12", "--ram", "32", "--json"],
    ["--help"],
])
def test_a_reader_that_leaves_ends_the_command_quietly(command: list[str]) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "seedvr_desktop", *command],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=subprocess_env())
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `| head -c0`: every write the command makes hits a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert err == ""


def test_a_broken_pipe_elsewhere_is_still_an_internal_error(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from seedvr_desktop import cli_models

    def talks_to_a_dead_peer(_args: object) -> int:
        raise BrokenPipeError(32, "Broken pipe")  # e.g. a socket, while stdout is fine

    monkeypatch.setattr(cli_models, "_cmd_list", talks_to_a_dead_peer)
    assert cli.main(["models", "list"]) == 2
    assert "internal error" in capsys.readouterr().err
