"""The model manager against a fake local hub (never the network): download, manifest,
verify, reuse of shared files, hash mismatch, offline instructions and the `models` command."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from seedvr_desktop import cli
from seedvr_desktop.engine.seedvr import store
from seedvr_desktop.engine.seedvr.hub import HuggingFaceHub, LocalFolderHub
from seedvr_desktop.errors import ModelError, UserError


def _fake_repo(root: Path, repo_id: str, files: dict[str, bytes]) -> Path:
    folder = root / repo_id
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def _files(dit: str, salt: bytes = b"") -> dict[str, bytes]:
    return {dit: b"dit weights " + salt + os.urandom(3000), "ema_vae.pth": b"vae" * 500,
            "pos_emb.pt": b"pos" * 50, "neg_emb.pt": b"neg" * 50, "README.md": b"readme"}


@pytest.fixture
def hub(tmp_path: Path) -> Path:
    root = tmp_path / "hub"
    _fake_repo(root, "ByteDance-Seed/SeedVR2-3B", _files("seedvr2_ema_3b.pth"))
    _fake_repo(root, "ByteDance-Seed/SeedVR2-7B", {
        **_files("seedvr2_ema_7b.pth"), "seedvr2_ema_7b_sharp.pth": b"sharp" * 100})
    # The 7B repository ships the same VAE and embeddings as the 3B one.
    for name in ("ema_vae.pth", "pos_emb.pt", "neg_emb.pt"):
        shutil.copy(root / "ByteDance-Seed/SeedVR2-3B" / name,
                    root / "ByteDance-Seed/SeedVR2-7B" / name)
    return root


@pytest.fixture
def models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models"
    monkeypatch.setenv("SEEDVR_DESKTOP_MODELS_DIR", str(folder))
    return folder


class FakeHf:
    """Stand-ins for huggingface_hub.HfApi.model_info and hf_hub_download over a local repo."""

    def __init__(self, hub: Path, commit: str = "0123456789abcdef" * 2 + "01234567") -> None:
        self.hub, self.commit = hub, commit
        self.downloads: list[tuple[str, str, str]] = []
        self.wrong_hash_for: str | None = None

    def model_info(self, repo_id: str, *, revision: str | None = None,
                   files_metadata: bool = False, **_: object) -> SimpleNamespace:
        assert files_metadata, "the LFS hashes are needed for verification"
        siblings = []
        for p in sorted((self.hub / repo_id).iterdir()):
            sha = hashlib.sha256(p.read_bytes()).hexdigest()
            if p.name == self.wrong_hash_for:
                sha = "0" * 64
            lfs = SimpleNamespace(size=p.stat().st_size, sha256=sha, pointer_size=130)
            siblings.append(SimpleNamespace(rfilename=p.name, size=p.stat().st_size, lfs=lfs))
        return SimpleNamespace(sha=self.commit, siblings=siblings)

    def hf_hub_download(self, repo_id: str, filename: str, *, revision: str | None = None,
                        local_dir: Path | None = None, **_: object) -> str:
        assert revision == self.commit, "files must come from the resolved commit"
        assert local_dir is not None
        self.downloads.append((repo_id, filename, revision))
        Path(local_dir).mkdir(parents=True, exist_ok=True)
        target = Path(local_dir) / filename
        shutil.copyfile(self.hub / repo_id / filename, target)
        return str(target)


@pytest.fixture
def fake_hf(hub: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHf:
    import huggingface_hub

    fake = FakeHf(hub)
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", fake.model_info)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake.hf_hub_download)
    return fake


def test_hugging_face_download_records_commit_and_hashes(models_dir: Path, fake_hf: FakeHf,
                                                         hub: Path) -> None:
    folder = store.download("seedvr2-3b")
    assert folder == models_dir / "seedvr2-3b" and store.is_installed("seedvr2-3b")
    assert sorted(f for _, f, _ in fake_hf.downloads) == sorted(store.CATALOG["seedvr2-3b"].files)
    manifest = store.Manifest.read(folder)
    assert manifest is not None and manifest.revision == fake_hf.commit
    for name in store.CATALOG["seedvr2-3b"].files:
        expected = hashlib.sha256((hub / "ByteDance-Seed/SeedVR2-3B" / name).read_bytes())
        assert manifest.files[name]["sha256"] == expected.hexdigest()
        assert manifest.files[name]["verified_against_hub"] is True
    assert not (folder / "README.md").exists()  # only the files the engine needs
    report = store.verify("seedvr2-3b")
    assert report.passed and sorted(report.ok) == sorted(store.CATALOG["seedvr2-3b"].files)


def test_second_model_reuses_shared_files_and_rerun_fetches_nothing(models_dir: Path,
                                                                    fake_hf: FakeHf) -> None:
    store.download("seedvr2-3b")
    fake_hf.downloads.clear()
    store.download("seedvr2-7b-sharp")
    assert [f for _, f, _ in fake_hf.downloads] == ["seedvr2_ema_7b_sharp.pth"]
    shared = models_dir / "seedvr2-7b-sharp" / "ema_vae.pth"
    assert shared.read_bytes() == (models_dir / "seedvr2-3b" / "ema_vae.pth").read_bytes()
    fake_hf.downloads.clear()
    store.download("seedvr2-7b-sharp")  # everything present and verified: nothing to fetch
    assert fake_hf.downloads == []


def test_hash_mismatch_sets_the_file_aside(models_dir: Path, fake_hf: FakeHf) -> None:
    fake_hf.wrong_hash_for = "pos_emb.pt"
    with pytest.raises(ModelError, match=r"pos_emb\.pt: SHA-256"):
        store.download("seedvr2-3b")
    folder = models_dir / "seedvr2-3b"
    assert not (folder / "pos_emb.pt").exists() and (folder / "pos_emb.pt.corrupt").exists()
    assert not store.is_installed("seedvr2-3b")


def test_offline_says_which_files_go_where(models_dir: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("Name or service not known")

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", offline)
    with pytest.raises(UserError) as err:
        store.download("seedvr2-7b")
    msg = str(err.value)
    assert str(models_dir / "seedvr2-7b") in msg
    for name in store.CATALOG["seedvr2-7b"].files:
        assert name in msg
    assert "https://huggingface.co/ByteDance-Seed/SeedVR2-7B" in msg


def test_local_mirror_and_verify_detects_damage(models_dir: Path, hub: Path) -> None:
    folder = store.download("seedvr2-3b", hub=LocalFolderHub(hub))
    assert store.Manifest.read(folder).revision.startswith("local-")  # type: ignore[union-attr]
    path = folder / "ema_vae.pth"
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF
    path.write_bytes(bytes(data))
    (folder / "neg_emb.pt").unlink()
    report = store.verify("seedvr2-3b")
    assert report.mismatched == ["ema_vae.pth"] and report.missing == ["neg_emb.pt"]
    assert not report.passed


def test_models_command(models_dir: Path, hub: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(models_dir)
    assert cli.main(["models", "download", "seedvr2-3b", "--source", str(hub)]) == 0
    assert "installed in" in capsys.readouterr().out
    assert cli.main(["models", "list"]) == 0
    listing = capsys.readouterr().out
    assert any(line.startswith("seedvr2-3b") and "installed" in line
               for line in listing.splitlines())
    assert any(line.startswith("seedvr2-7b ") and "-" in line for line in listing.splitlines())
    assert cli.main(["models", "verify", "seedvr2-3b"]) == 0
    assert "ok" in capsys.readouterr().out
    (models_dir / "seedvr2-3b" / "pos_emb.pt").write_bytes(b"tampered")
    assert cli.main(["models", "verify"]) == 1
    captured = capsys.readouterr()
    assert "pos_emb.pt: DAMAGED" in captured.out and "verification failed" in captured.err
    manifest = json.loads((models_dir / "seedvr2-3b" / "manifest.json").read_text())
    assert manifest["repo_id"] == "ByteDance-Seed/SeedVR2-3B"


# ------------------------------------------------------------------------------- timeouts
def test_download_times_out_on_a_server_that_never_answers(models_dir: Path) -> None:
    """Issue 14 item 9: a server that accepts connections but never replies must not hang."""
    import socket
    import threading
    import time

    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_and_ignore() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn)  # keep it open, never reply

    thread = threading.Thread(target=accept_and_ignore, daemon=True)
    thread.start()
    port = server.getsockname()[1]
    hub = HuggingFaceHub(endpoint=f"http://127.0.0.1:{port}", timeout=0.5)
    t0 = time.monotonic()
    try:
        with pytest.raises(UserError) as err:
            store.download("seedvr2-3b", hub=hub)
    finally:
        stop.set()
        thread.join(2)
        for conn in accepted:
            conn.close()
        server.close()
    assert time.monotonic() - t0 < 30
    msg = str(err.value)
    assert "did not answer within 0.5 s" in msg and "\n" not in msg
    assert accepted, "the request reached the server"
