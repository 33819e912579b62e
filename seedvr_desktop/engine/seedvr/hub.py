"""Where model files come from: the Hugging Face Hub, or a folder laid out like it.

`HuggingFaceHub` talks to the Hub through huggingface_hub (resumable downloads, progress, the
LFS SHA-256 of each file, connect and read timeouts); `LocalFolderHub` reads the same layout
from a folder (an offline mirror, or the tests' fake repository), so the store's code paths all
run without the network. Split from `store.py`, which decides what goes where.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from seedvr_desktop.errors import UserError
from seedvr_desktop.fsutil import atomic_path

# (file name, bytes done, bytes total): hashing and downloading report through this.
Progress = Callable[[str, int, int], None]


def sha256_file(path: Path, progress: Progress | None = None, block: int = 8 << 20) -> str:
    """Streaming SHA-256 (model files are tens of GB: never read whole)."""
    h = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with path.open("rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
            done += len(chunk)
            if progress:
                progress(path.name, done, total)
    return h.hexdigest()


# ------------------------------------------------------------------------------- hubs
@dataclass(frozen=True)
class RemoteFile:
    size: int | None
    sha256: str | None  # from LFS metadata; None when the hub does not say


@dataclass(frozen=True)
class Snapshot:
    repo_id: str
    commit: str
    files: dict[str, RemoteFile]


class Hub(Protocol):
    """Where official files come from (the Hugging Face Hub, or a local mirror folder)."""

    def resolve(self, repo_id: str, revision: str) -> Snapshot: ...

    def fetch(self, snapshot: Snapshot, filename: str, dest_dir: Path) -> Path: ...


class HubUnreachable(Exception):
    """The hub could not be asked at all (offline, DNS, proxy): the caller prints instructions.

    `timed_out`: it accepted the connection (or never completed it) but did not answer in time.
    """

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


HUB_TIMEOUT_S = 20.0  # connect and read: a proxy that accepts but never answers must not hang


def _is_timeout(exc: BaseException) -> bool:
    for e in (exc, exc.__cause__, exc.__context__):
        if e is not None and ("timeout" in type(e).__name__.lower()
                              or "timed out" in str(e).lower()):
            return True
    return False


class HuggingFaceHub:
    """huggingface_hub: resolve a revision to a commit with LFS hashes, download resumably.

    Every request has a connect and read timeout (`timeout` seconds): without one, a network
    that accepts connections but never answers (a broken proxy) hangs the command forever.
    """

    def __init__(self, endpoint: str | None = None, timeout: float = HUB_TIMEOUT_S) -> None:
        self.endpoint = endpoint
        self.timeout = timeout

    def resolve(self, repo_id: str, revision: str) -> Snapshot:
        from huggingface_hub import HfApi
        from huggingface_hub.errors import (
            GatedRepoError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        try:
            info = HfApi(endpoint=self.endpoint).model_info(
                repo_id, revision=revision, files_metadata=True, timeout=self.timeout)
        except (RepositoryNotFoundError, RevisionNotFoundError, GatedRepoError) as exc:
            raise UserError(f"{repo_id}@{revision}: {type(exc).__name__}") from exc
        except Exception as exc:  # connection errors come in many types (httpx, OSError, ...)
            raise HubUnreachable(f"{type(exc).__name__}: {exc}",
                                 timed_out=_is_timeout(exc)) from exc
        files = {}
        for sib in info.siblings or []:
            lfs = getattr(sib, "lfs", None)
            files[sib.rfilename] = RemoteFile(
                size=getattr(lfs, "size", None) or sib.size,
                sha256=getattr(lfs, "sha256", None),
            )
        return Snapshot(repo_id, str(info.sha), files)

    def fetch(self, snapshot: Snapshot, filename: str, dest_dir: Path) -> Path:
        import huggingface_hub
        from huggingface_hub import constants as hf_constants

        # The read timeout of the file transfer itself is this library setting (no argument).
        hf_constants.HF_HUB_DOWNLOAD_TIMEOUT = max(1, int(self.timeout))
        try:
            # local_dir downloads resume from `<dest>/.cache/huggingface/download/*.incomplete`.
            path = huggingface_hub.hf_hub_download(
                snapshot.repo_id, filename, revision=snapshot.commit, local_dir=dest_dir,
                etag_timeout=self.timeout, endpoint=self.endpoint,
            )
        except Exception as exc:
            raise HubUnreachable(f"{filename}: {type(exc).__name__}: {exc}",
                                 timed_out=_is_timeout(exc)) from exc
        return Path(str(path))


class LocalFolderHub:
    """A folder laid out as `<folder>/<owner>/<repo>/<files>` (or `<folder>/<repo>/<files>`).

    Used for offline mirrors (`models download NAME --source DIR`) and by the tests as a fake
    repository; the commit is a hash of the file listing so a changed mirror is noticed.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _repo_dir(self, repo_id: str) -> Path:
        for cand in (self.folder / repo_id, self.folder / repo_id.split("/")[-1]):
            if cand.is_dir():
                return cand
        raise HubUnreachable(f"{repo_id} not found under {self.folder}")

    def resolve(self, repo_id: str, revision: str) -> Snapshot:
        repo = self._repo_dir(repo_id)
        files = {}
        listing = hashlib.sha256()
        for p in sorted(repo.iterdir()):
            if p.is_file():
                files[p.name] = RemoteFile(p.stat().st_size, sha256_file(p))
                listing.update(f"{p.name}:{files[p.name].sha256}\n".encode())
        return Snapshot(repo_id, "local-" + listing.hexdigest()[:16], files)

    def fetch(self, snapshot: Snapshot, filename: str, dest_dir: Path) -> Path:
        src = self._repo_dir(snapshot.repo_id) / filename
        return atomic_copy(src, dest_dir / filename)


def atomic_copy(src: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
    return dest
