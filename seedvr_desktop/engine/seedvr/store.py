"""The models folder: where the catalogue's SeedVR files go, and how they get there.

Each engine name (`seedvr2-3b`, ...) owns one folder `<models dir>/<name>/` holding exactly the
publisher's files for it (DiT checkpoint, `ema_vae.pth`, `pos_emb.pt`, `neg_emb.pt`) and a
`manifest.json` written after download: the repository, the commit the revision resolved to, and
each file's size and SHA-256. `verify` re-hashes against that manifest, so a damaged or swapped
file is found before a long job trips over it.

A community variant of a SeedVR2 DiT (`download(name, variant="Q8_0")`, see catalogue.py) gets a
folder of its own, `<models dir>/<name>-<variant>/`: its DiT from the community repository, the
VAE and embeddings from the official one (each file's repository and commit in the manifest), and
a `seedvr.json` naming the preset, so the folder works as `--model-dir`.

Downloads go through a `Hub` (hub.py): the Hugging Face Hub, or a local folder laid out like it
(an offline mirror, or the tests' fake repository), so every code path here runs without the
network.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from seedvr_desktop.engine.seedvr.catalogue import (
    CATALOG,
    OFFICIAL_VARIANT,
    SHARED_FILES,
    OfficialModel,
    Variant,
    find_variant,
    variants_of,
)
from seedvr_desktop.engine.seedvr.hub import (
    HUB_TIMEOUT_S,
    Hub,
    HubUnreachable,
    HuggingFaceHub,
    Progress,
    RemoteFile,
    Snapshot,
    atomic_copy,
    sha256_file,
)
from seedvr_desktop.errors import ModelError, UserError
from seedvr_desktop.fsutil import atomic_write_text
from seedvr_desktop.settings import Settings, load_settings

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
GITHUB_EMBEDDINGS = "https://github.com/ByteDance-Seed/SeedVR (repository root)"


# CATALOG, SHARED_FILES, OfficialModel and Variant are the catalogue's (catalogue.py), used and
# re-exported here: `store.CATALOG` is what callers have always read.


def get_model(name: str) -> OfficialModel:
    try:
        return CATALOG[name]
    except KeyError:
        raise UserError(f"unknown model {name!r} (known: {', '.join(CATALOG)})") from None


def get_variant(name: str, variant: str | None) -> Variant | None:
    """The community variant `variant` of model `name`; None for the official files."""
    m = get_model(name)
    if variant is None or variant.lower() == OFFICIAL_VARIANT:
        return None
    found = find_variant(m.name, variant)
    if found is None:
        known = ", ".join((OFFICIAL_VARIANT, *(v.name for v in variants_of(m.name))))
        raise UserError(f"{name} has no variant {variant!r} (known: {known})")
    return found


def sources(name: str, variant: str | None = None) -> list[tuple[str, str]]:
    """(repository, file) of every file the model's folder needs: a variant's DiT comes from its
    community repository, the VAE and text embeddings from the official one."""
    m = get_model(name)
    v = get_variant(name, variant)
    dit = (v.repo_id, v.dit_file) if v else (m.repo_id, m.dit_file)
    return [dit, *((m.repo_id, f) for f in SHARED_FILES)]


def model_files(name: str, variant: str | None = None) -> tuple[str, ...]:
    return tuple(f for _, f in sources(name, variant))


def models_root(settings: Settings | None = None) -> Path:
    """The models folder: SEEDVR_DESKTOP_MODELS_DIR, else the setting, else the data folder."""
    return (settings or load_settings()).resolved_models_dir()


def model_dir(name: str, root: Path | None = None, variant: str | None = None) -> Path:
    """`<models>/<name>/` for the official files, `<models>/<name>-<variant>/` for a variant."""
    v = get_variant(name, variant)
    return (root or models_root()) / (v.folder_name if v else get_model(name).name)


def missing_files(name: str, root: Path | None = None, variant: str | None = None) -> list[str]:
    folder = model_dir(name, root, variant)
    return [f for f in model_files(name, variant) if not (folder / f).is_file()]


def is_installed(name: str, root: Path | None = None, variant: str | None = None) -> bool:
    return not missing_files(name, root, variant)


def installed_folder(name: str, root: Path | None = None) -> Path | None:
    """The folder `--engine NAME` restores with: the official files when installed, else the
    most precise installed community variant (catalogue order: fp16, fp8, Q8_0, Q4_K_M), else
    None. So `models download NAME --variant Q8_0` alone makes `--engine NAME` work."""
    for var in (None, *(v.name for v in variants_of(get_model(name).name))):
        if is_installed(name, root, var):
            return model_dir(name, root, var)
    return None


def present(root: Path | None = None) -> list[tuple[str, str | None]]:
    """(model, variant or None) of every catalogue entry with at least one file in place."""
    out: list[tuple[str, str | None]] = []
    for m in CATALOG.values():
        for var in (None, *(v.name for v in variants_of(m.name))):
            if len(missing_files(m.name, root, var)) < len(model_files(m.name, var)):
                out.append((m.name, var))
    return out


def offline_instructions(name: str, root: Path | None = None,
                         variant: str | None = None) -> str:
    """Exactly which files to put where when the machine cannot download them itself."""
    folder = model_dir(name, root, variant)
    lines = [f"Download these files by hand and place them in {folder}:"]
    for repo_id, f in sources(name, variant):
        lines.append(f"  {f:<28} from https://huggingface.co/{repo_id}/resolve/main/{f}")
    lines.append(f"  (pos_emb.pt and neg_emb.pt are also in {GITHUB_EMBEDDINGS})")
    v = get_variant(name, variant)
    opt = f" --variant {v.name}" if v else ""
    lines.append(f"then run: seedvr-desktop models verify {name}{opt}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------- manifest
@dataclass
class Manifest:
    """What a download installed. `repo_id`/`revision`: where the DiT came from; each file entry
    holds its size and SHA-256 and, when it came from another repository (a variant's official
    VAE and embeddings), that `repo_id` and `revision` too."""

    model: str
    repo_id: str
    revision: str  # the commit the requested revision resolved to at download time
    files: dict[str, dict[str, object]] = field(default_factory=dict)  # name -> size, sha256
    downloaded_at: int = 0  # unix time
    variant: str = OFFICIAL_VARIANT

    @classmethod
    def read(cls, folder: Path) -> Manifest | None:
        try:
            raw = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            return cls(raw["model"], raw["repo_id"], raw["revision"], dict(raw["files"]),
                       int(raw.get("downloaded_at", 0)),
                       str(raw.get("variant", OFFICIAL_VARIANT)))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{folder / MANIFEST} is damaged ({exc}); download again") from exc

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / MANIFEST, json.dumps(self.__dict__, indent=2, sort_keys=True))


# ------------------------------------------------------------------------------- operations
def download(
    name: str,
    *,
    variant: str | None = None,
    root: Path | None = None,
    hub: Hub | None = None,
    revision: str = "main",
    progress: Progress | None = None,
) -> Path:
    """Fetch every file of `name` (or of its community `variant`) at one commit per repository,
    verify SHA-256 against the hub's LFS metadata, record the manifest.

    Files already present with the expected hash are kept (a re-run after an interruption only
    fetches what is missing); shared files (the VAE, the embeddings) are hard-linked from another
    installed model with the same hash instead of downloaded twice. `revision` applies to the
    DiT's repository; a variant's official files come from the official repository's main.
    """
    m = get_model(name)
    var = get_variant(name, variant)
    hub = hub or HuggingFaceHub()
    folder = model_dir(name, root, variant)
    wanted = sources(name, variant)
    dit_repo = wanted[0][0]
    snaps: dict[str, Snapshot] = {}
    for repo_id in dict.fromkeys(r for r, _ in wanted):
        try:
            snaps[repo_id] = hub.resolve(repo_id, revision if repo_id == dit_repo else "main")
        except HubUnreachable as exc:
            raise _hub_error(exc, hub, f"cannot reach the model hub ({exc}).",
                             offline_instructions(name, root, variant)) from exc
    manifest = Manifest(m.name, dit_repo, snaps[dit_repo].commit,
                        variant=var.name if var else OFFICIAL_VARIANT)
    for repo_id, filename in wanted:
        snap = snaps[repo_id]
        remote = snap.files.get(filename)
        if remote is None:
            raise ModelError(f"{repo_id}@{snap.commit[:12]} has no file {filename}")
        target = folder / filename
        digest = _reuse_existing(target, remote, folder.parent, progress)
        if digest is None:
            log.info("downloading %s/%s -> %s", repo_id, filename, folder)
            try:
                got = hub.fetch(snap, filename, folder)
            except HubUnreachable as exc:
                raise _hub_error(exc, hub, f"download of {filename} failed ({exc}); run the "
                                 "command again to resume.",
                                 offline_instructions(name, root, variant)) from exc
            if got.resolve() != target.resolve():
                os.replace(got, target)
            digest = sha256_file(target, progress)
            if remote.sha256 and digest != remote.sha256:
                target.rename(target.with_suffix(target.suffix + ".corrupt"))
                raise ModelError(
                    f"{filename}: SHA-256 {digest[:16]}... does not match the hub's "
                    f"{remote.sha256[:16]}...; the damaged copy was set aside, download again"
                )
        entry: dict[str, object] = {"size": target.stat().st_size, "sha256": digest,
                                    "verified_against_hub": bool(remote.sha256)}
        if repo_id != dit_repo:
            entry.update(repo_id=repo_id, revision=snap.commit)
        manifest.files[filename] = entry
    if var is not None:
        _write_model_json(folder, m, var)
    manifest.downloaded_at = int(time.time())
    manifest.write(folder)
    return folder


def _write_model_json(folder: Path, m: OfficialModel, var: Variant) -> None:
    """A variant folder names its preset, so `--model-dir` with any SeedVR engine loads it as
    the right architecture and recipe (see folder.py)."""
    from seedvr_desktop.engine.seedvr.folder import MODEL_JSON

    meta = {"preset": m.name, "name": var.label, "dit_file": var.dit_file}
    atomic_write_text(folder / MODEL_JSON, json.dumps(meta, indent=2) + "\n")


def _hub_error(exc: HubUnreachable, hub: Hub, what: str, instructions: str) -> UserError:
    """What the user reads when the hub fails: the timeout advice, or what failed plus how to
    download the files by hand."""
    if exc.timed_out:
        return UserError(_timeout_message(hub))
    return UserError(f"{what}\n{instructions}")


def _timeout_message(hub: Hub) -> str:
    seconds = getattr(hub, "timeout", HUB_TIMEOUT_S)
    where = getattr(hub, "endpoint", None) or "huggingface.co"
    return (f"the model hub ({where}) did not answer within {seconds:g} s; check the network or "
            f"proxy and run the command again (it resumes), or use --source DIR")


def _reuse_existing(
    target: Path, remote: RemoteFile, root: Path, progress: Progress | None
) -> str | None:
    """The file's hash if a good copy is already in place (or can be linked), else None."""
    if target.is_file() and (remote.size is None or target.stat().st_size == remote.size):
        digest = sha256_file(target, progress)
        if remote.sha256 is None or digest == remote.sha256:
            return digest
    if remote.sha256 is None:
        return None
    for other in _manifests(root):
        meta = other[1].files.get(target.name)
        src = other[0] / target.name
        if meta and meta.get("sha256") == remote.sha256 and src.is_file() and src != target:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.unlink(missing_ok=True)
            try:
                os.link(src, target)
            except OSError:
                atomic_copy(src, target)
            digest = sha256_file(target, progress)
            if digest == remote.sha256:
                log.info("reused %s from %s", target.name, src.parent)
                return digest
    return None


def _manifests(root: Path) -> Iterable[tuple[Path, Manifest]]:
    if not root.is_dir():
        return
    for folder in sorted(root.iterdir()):
        try:
            man = Manifest.read(folder) if folder.is_dir() else None
        except ModelError:
            continue
        if man is not None:
            yield folder, man


@dataclass
class VerifyReport:
    name: str
    folder: Path
    ok: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    unrecorded: list[str] = field(default_factory=list)  # present, but no manifest hash to check

    @property
    def passed(self) -> bool:
        return not (self.missing or self.mismatched)


def verify(name: str, *, variant: str | None = None, root: Path | None = None,
           progress: Progress | None = None) -> VerifyReport:
    """Re-hash every file against the manifest written at download time."""
    folder = model_dir(name, root, variant)
    v = get_variant(name, variant)
    report = VerifyReport(v.label if v else name, folder)
    manifest = Manifest.read(folder)
    for filename in model_files(name, variant):
        path = folder / filename
        if not path.is_file():
            report.missing.append(filename)
            continue
        meta = manifest.files.get(filename) if manifest else None
        if not meta:
            report.unrecorded.append(filename)
            continue
        same = path.stat().st_size == meta.get("size") and sha256_file(path, progress) == meta.get(
            "sha256"
        )
        (report.ok if same else report.mismatched).append(filename)
    return report
