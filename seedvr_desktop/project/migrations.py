"""Upgrades of older `.svrproj` JSON to the current schema, one version step at a time.

Projects live for years (a box of tapes is not done in a weekend), so every schema change adds a
function here that turns version N into N+1 on the raw JSON dictionary. Loading runs the chain up
to `SCHEMA_VERSION`; saving always writes the current version. Migrations must not touch the disk
and must raise `FieldError` naming the field when the old data is not what that version allowed.

Schema history
- 1: clips carried their source path inline (`source`, absolute only), trims as `in`/`out`,
     caption times in integer milliseconds (`start_ms`/`end_ms`, no position or style), and the
     project's restoration defaults under `settings`.
- 2: a `media` table with ids, relative + absolute paths, fingerprints and probe summaries;
     clips refer to media by id and carry ids; `in_frame`/`out_frame`; caption times in seconds
     with position and style; `restore` instead of `settings`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from seedvr_desktop.project import fields
from seedvr_desktop.project.model import SCHEMA_VERSION

log = logging.getLogger(__name__)

Migration = Callable[[dict[str, Any]], dict[str, Any]]

# from_version -> function producing the dict of version from_version + 1
MIGRATIONS: dict[int, Migration] = {}


def migration(from_version: int) -> Callable[[Migration], Migration]:
    """Register a step from `from_version` to `from_version + 1`."""

    def register(func: Migration) -> Migration:
        if from_version in MIGRATIONS:
            raise RuntimeError(f"two migrations from schema {from_version}")
        MIGRATIONS[from_version] = func
        return func

    return register


def migrate(data: dict[str, Any], version: int) -> dict[str, Any]:
    """Run every step from `version` up to the current schema; returns a new dictionary."""
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise fields.FieldError("schema_version", f"{version} cannot be upgraded (too old)")
        log.info("upgrading project from schema %d to %d", version, version + 1)
        data = step(data)
        version += 1
        data["schema_version"] = version
    return data


@migration(1)
def _v1_to_v2(old: dict[str, Any]) -> dict[str, Any]:
    """Inline sources become a media table; milliseconds become seconds; renames."""
    media: list[dict[str, Any]] = []
    media_ids: dict[str, str] = {}
    clips: list[dict[str, Any]] = []
    for index, raw in enumerate(fields.get_list(old, "clips", "", default=[])):
        where = fields.join("clips", index)
        clip = fields.obj(raw, where)
        source = fields.get(clip, "source", str, where)
        if source not in media_ids:
            media_ids[source] = f"media{len(media_ids) + 1}"
            # No relative path was ever stored; the loader resolves the absolute one and the next
            # save adds the relative form.
            media.append(
                {"id": media_ids[source], "path": None, "absolute_path": source,
                 "fingerprint": None, "probe": {}}
            )
        captions = []
        for c_index, raw_caption in enumerate(fields.get_list(clip, "captions", where, default=[])):
            c_where = fields.join(fields.join(where, "captions"), c_index)
            caption = fields.obj(raw_caption, c_where)
            captions.append(
                {
                    "start": fields.get(caption, "start_ms", int, c_where) / 1000.0,
                    "end": fields.get(caption, "end_ms", int, c_where) / 1000.0,
                    "text": fields.get(caption, "text", str, c_where),
                    "position": "bottom",
                }
            )
        clips.append(
            {
                "id": f"clip{index + 1}",
                "media": media_ids[source],
                "name": fields.get(clip, "name", str, where, default=""),
                "in_frame": fields.get(clip, "in", int, where, default=0),
                "out_frame": fields.get(clip, "out", int, where, default=None, nullable=True),
                "restore": fields.get(clip, "settings", dict, where, default={}),
                "captions": captions,
                "prompt": fields.get(clip, "prompt", str, where, default=""),
            }
        )
    return {
        "format": old.get("format"),
        "schema_version": 2,
        "name": fields.get(old, "name", str, "", default="Untitled"),
        "restore": fields.get(old, "settings", dict, "", default={}),
        "export": fields.get(old, "export", dict, "", default={}),
        "media": media,
        "clips": clips,
    }
