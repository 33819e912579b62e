"""Reading and writing `.svrproj` files: UTF-8 JSON, versioned, atomic, with a backup.

The file must never be the thing that loses a week of work, so:
- writes go to a temporary file in the same folder, are fsynced and then `os.replace`d over the
  old file, whose previous content is first kept as `NAME.svrproj.bak`;
- every decoding problem becomes one `ProjectError` line naming the JSON line/column or the field;
- key order is fixed (not sorted, but always the same) and the JSON is indented, so files diff
  well and can be repaired by hand;
- media paths are stored relative to the project file (so a folder moved with its media keeps
  working) with the absolute path as a fallback; media found at neither place is flagged
  `missing`, never an error.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path, PurePosixPath
from typing import Any

from seedvr_desktop import fsutil
from seedvr_desktop.project import fields
from seedvr_desktop.project.fields import FieldError
from seedvr_desktop.project.migrations import migrate
from seedvr_desktop.project.model import (
    AUDIO_MODES,
    CAPTION_MODES,
    CAPTION_POSITIONS,
    CONTAINERS,
    FORMAT_NAME,
    SCHEMA_VERSION,
    SIDECAR_FORMATS,
    SOFT_SUBTITLE_FORMATS,
    VIDEO_CODECS,
    Caption,
    Clip,
    ExportSettings,
    Fingerprint,
    MediaRef,
    ProbeSummary,
    Project,
    ProjectError,
    RestoreSettings,
)

log = logging.getLogger(__name__)

BACKUP_SUFFIX = ".bak"

# Field name -> (JSON type, nullable). "size" is a [w, h] pair, "extra" a flat object of scalars.
_RESTORE_SPEC: dict[str, tuple[Any, bool]] = {
    "engine": (str, False),
    "model": (str, True),
    "scale": (float, True),
    "short_side": (int, True),
    "size": ("size", True),
    "color_fix": (str, False),
    "seed": (int, False),
    "chunk_length": (int, True),
    "overlap": (int, True),
    "precision": (str, False),
    "strength": (float, True),
    "extra": ("extra", False),
}
_EXPORT_SPEC: dict[str, tuple[Any, bool]] = {
    "container": (str, False),
    "codec": (str, False),
    "crf": (int, True),
    "bitrate_kbps": (int, True),
    "preset": (str, True),
    "pixel_format": (str, True),
    "bit_depth": (int, False),
    "audio": (str, False),
    "captions": (str, False),
    "sidecar_format": (str, False),
    "soft_format": (str, False),
    "output_folder": (str, False),
    "file_pattern": (str, False),
}
_EXPORT_CHOICES = {
    "container": CONTAINERS,
    "codec": VIDEO_CODECS,
    "audio": AUDIO_MODES,
    "captions": CAPTION_MODES,
    "sidecar_format": SIDECAR_FORMATS,
    "soft_format": SOFT_SUBTITLE_FORMATS,
}
_PROBE_SPEC: dict[str, tuple[Any, bool]] = {
    "width": (int, True),
    "height": (int, True),
    "frame_rate": (str, True),
    "frame_count": (int, True),
    "duration": (float, True),
    "is_image": (bool, False),
    "has_audio": (bool, False),
    "video_codec": (str, True),
}


# ----------------------------------------------------------------------------- encoding


def _encode_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def _encode_fields(obj: Any) -> dict[str, Any]:
    return {f.name: _encode_value(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def _relative(path: Path, base_dir: Path) -> str | None:
    """`path` relative to `base_dir` with forward slashes, or None across Windows drives."""
    try:
        rel = os.path.relpath(path, base_dir)
    except ValueError:
        return None
    return PurePosixPath(*Path(rel).parts).as_posix()


def project_to_dict(project: Project, base_dir: Path) -> dict[str, Any]:
    """The JSON document for `project` saved in folder `base_dir`, keys in their fixed order."""
    media = []
    for ref in project.media:
        media.append(
            {
                "id": ref.id,
                "path": _relative(ref.path, base_dir),
                "absolute_path": str(ref.path),
                "fingerprint": (
                    {"size": ref.fingerprint.size, "sha256": ref.fingerprint.digest}
                    if ref.fingerprint
                    else None
                ),
                "probe": _encode_fields(ref.probe),
            }
        )
    clips = []
    for clip in project.clips:
        clips.append(
            {
                "id": clip.id,
                "media": clip.media_id,
                "name": clip.name,
                "in_frame": clip.in_frame,
                "out_frame": clip.out_frame,
                "prompt": clip.prompt,
                "restore": {k: _encode_value(v) for k, v in sorted(clip.restore.items())},
                "captions": [_encode_fields(c) for c in clip.captions],
            }
        )
    return {
        "format": FORMAT_NAME,
        "schema_version": SCHEMA_VERSION,
        "name": project.name,
        "restore": _encode_fields(project.restore),
        "export": _encode_fields(project.export),
        "media": media,
        "clips": clips,
    }


def dumps_project(project: Project, base_dir: Path) -> str:
    """Human-readable JSON text (indent 2, UTF-8 characters kept, trailing newline)."""
    data = project_to_dict(project, base_dir)
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# ----------------------------------------------------------------------------- decoding


def _decode_value(value: Any, kind: Any, nullable: bool, where: str) -> Any:
    if kind == "size":
        if value is None and nullable:
            return None
        pair = fields.check(value, list, where)
        if len(pair) != 2:
            raise FieldError(where, "must be a [width, height] pair")
        return tuple(fields.check(v, int, f"{where}[{i}]") for i, v in enumerate(pair))
    if kind == "extra":
        extra = fields.obj(value, where)
        for key, item in extra.items():
            if item is not None and type(item) not in (str, int, float, bool):
                raise FieldError(fields.join(where, key), "must be text, a number or true/false")
        return dict(extra)
    return fields.check(value, kind, where, nullable=nullable)


def _decode_fields(
    data: dict[str, Any], spec: dict[str, tuple[Any, bool]], where: str, *, partial: bool
) -> dict[str, Any]:
    """Typed values for the known keys in `data`; unknown keys are dropped with a warning."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in spec:
            if partial:
                raise FieldError(fields.join(where, key), "is not a known setting")
            log.warning("ignoring unknown project field %s", fields.join(where, key))
            continue
        kind, nullable = spec[key]
        out[key] = _decode_value(value, kind, nullable, fields.join(where, key))
    return out


def _settings(cls: type, values: dict[str, Any], where: str) -> Any:
    try:
        settings = cls(**values)
        settings.validate()
    except ProjectError as exc:
        raise FieldError(where, f"is invalid: {exc}") from None
    return settings


def _decode_media(raw: Any, where: str, base_dir: Path) -> MediaRef:
    data = fields.obj(raw, where)
    rel = fields.get(data, "path", str, where, default=None, nullable=True)
    absolute = fields.get(data, "absolute_path", str, where, default=None, nullable=True)
    if rel is None and absolute is None:
        raise FieldError(where, "has neither path nor absolute_path")
    candidates = []
    if rel is not None:
        candidates.append(Path(os.path.normpath(base_dir / Path(*PurePosixPath(rel).parts))))
    if absolute is not None and Path(absolute) not in candidates:
        candidates.append(Path(absolute))
    found = next((c for c in candidates if c.is_file()), None)
    fp_raw = fields.get(data, "fingerprint", dict, where, default=None, nullable=True)
    fingerprint = None
    if fp_raw is not None:
        fp_where = fields.join(where, "fingerprint")
        fingerprint = Fingerprint(
            size=fields.get(fp_raw, "size", int, fp_where),
            digest=fields.get(fp_raw, "sha256", str, fp_where),
        )
    probe_raw = fields.get(data, "probe", dict, where, default={})
    probe = ProbeSummary(**_decode_fields(probe_raw, _PROBE_SPEC, fields.join(where, "probe"),
                                          partial=False))
    ref = MediaRef(
        path=found or candidates[0],
        id=fields.get(data, "id", str, where),
        probe=probe,
        fingerprint=fingerprint,
    )
    if found is None:
        ref.missing = True
        log.warning("media %s is missing (looked at %s)", ref.id, ", ".join(map(str, candidates)))
    return ref


def _decode_caption(raw: Any, where: str) -> Caption:
    data = fields.obj(raw, where)
    caption = Caption(
        start=fields.get(data, "start", float, where),
        end=fields.get(data, "end", float, where),
        text=fields.get(data, "text", str, where),
        position=fields.choice(
            fields.get(data, "position", str, where, default="bottom"),
            CAPTION_POSITIONS,
            fields.join(where, "position"),
        ),
        size=fields.get(data, "size", float, where, default=Caption.size),
        color=fields.get(data, "color", str, where, default=Caption.color),
        outline=fields.get(data, "outline", bool, where, default=Caption.outline),
    )
    try:
        caption.validate()
    except ProjectError as exc:
        raise FieldError(where, f"is invalid: {exc}") from None
    return caption


def _decode_clip(raw: Any, where: str) -> Clip:
    data = fields.obj(raw, where)
    overrides = _decode_fields(
        fields.get(data, "restore", dict, where, default={}),
        _RESTORE_SPEC,
        fields.join(where, "restore"),
        partial=True,
    )
    captions_where = fields.join(where, "captions")
    clip = Clip(
        media_id=fields.get(data, "media", str, where),
        id=fields.get(data, "id", str, where),
        name=fields.get(data, "name", str, where, default=""),
        in_frame=fields.get(data, "in_frame", int, where, default=0),
        out_frame=fields.get(data, "out_frame", int, where, default=None, nullable=True),
        restore=overrides,
        captions=[
            _decode_caption(c, fields.join(captions_where, i))
            for i, c in enumerate(fields.get_list(data, "captions", where, default=[]))
        ],
        prompt=fields.get(data, "prompt", str, where, default=""),
    )
    clip.drop_empty_captions()  # saved before empty captions were refused: they draw nothing
    return clip


def project_from_dict(data: Any, base_dir: Path) -> Project:
    """Decode a parsed `.svrproj` document of any supported schema (migrating older ones)."""
    root = fields.obj(data, "the file")
    fmt = root.get("format")
    if fmt != FORMAT_NAME:
        raise ProjectError(f"not a SeedVR Desktop project (format is {fmt!r}, not {FORMAT_NAME!r})")
    version = fields.get(root, "schema_version", int, "")
    if version > SCHEMA_VERSION:
        raise ProjectError(
            f"saved by a newer SeedVR Desktop (schema_version {version}; this version reads up to "
            f"{SCHEMA_VERSION}); please update the application"
        )
    if version < 1:
        raise FieldError("schema_version", f"must be at least 1, not {version}")
    root = migrate(dict(root), version)

    restore = _settings(
        RestoreSettings,
        _decode_fields(fields.get(root, "restore", dict, "", default={}), _RESTORE_SPEC,
                       "restore", partial=False),
        "restore",
    )
    export_values = _decode_fields(
        fields.get(root, "export", dict, "", default={}), _EXPORT_SPEC, "export", partial=False
    )
    for key, allowed in _EXPORT_CHOICES.items():
        if key in export_values:
            fields.choice(export_values[key], allowed, f"export.{key}")
    export = _settings(ExportSettings, export_values, "export")
    media = [
        _decode_media(m, fields.join("media", i), base_dir)
        for i, m in enumerate(fields.get_list(root, "media", "", default=[]))
    ]
    clips = [
        _decode_clip(c, fields.join("clips", i))
        for i, c in enumerate(fields.get_list(root, "clips", "", default=[]))
    ]
    project = Project(
        name=fields.get(root, "name", str, "", default="Untitled"),
        media=media,
        clips=clips,
        restore=restore,
        export=export,
    )
    known = {m.id for m in media}
    for i, clip in enumerate(clips):
        if clip.media_id not in known:
            raise FieldError(f"clips[{i}].media", f"refers to unknown media {clip.media_id!r}")
    project.validate()
    return project


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed in a project file")


def loads_project(text: str | bytes, path: Path) -> Project:
    """Parse project text that was read from (or is meant for) `path`."""
    path = Path(path)
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ProjectError(f"{path.name}: not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise ProjectError(f"{path.name}: the file is empty")
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ProjectError(
            f"{path.name}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except ValueError as exc:
        raise ProjectError(f"{path.name}: {exc}") from None
    try:
        project = project_from_dict(data, path.parent)
    except ProjectError as exc:
        raise ProjectError(f"{path.name}: {exc}") from None
    project.path = path
    return project


def load_project(path: str | os.PathLike[str]) -> Project:
    """Open a `.svrproj` file; raises ProjectError with one clear line for any problem."""
    path = Path(path).absolute()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ProjectError(f"{path}: no such project file") from None
    except IsADirectoryError:
        raise ProjectError(f"{path}: is a folder, not a project file") from None
    except OSError as exc:
        raise ProjectError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return loads_project(raw, path)


# ----------------------------------------------------------------------------- writing


def backup_path(path: Path) -> Path:
    return path.with_name(path.name + BACKUP_SUFFIX)


def write_project(project: Project, path: str | os.PathLike[str] | None = None,
                  *, backup: bool = True) -> Path:
    """Write atomically to `path` (default: where it was loaded from), keeping a `.bak` copy.

    Only the file: `document.save_project` also retires the autosave, which callers want.
    """
    target = Path(path if path is not None else project.path or "").absolute()
    if path is None and project.path is None:
        raise ProjectError("the project has not been saved yet; choose a file name")
    project.validate()
    text = dumps_project(project, target.parent)
    try:
        fsutil.atomic_write_bytes(
            target, text.encode("utf-8"), backup=backup_path(target) if backup else None
        )
    except OSError as exc:
        raise ProjectError(f"cannot save {target}: {exc.strerror or exc}") from None
    project.path = target
    log.info("saved project %s", target)
    return target
