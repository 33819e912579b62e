"""Colour description of a video stream, carried from the source to the output.

FFmpeg stores four independent tags (primaries, transfer characteristic, YUV matrix, range) as
ISO/IEC 23091-2 code points. A restored file must carry the same tags as its source, otherwise
players guess (usually BT.601 for SD and BT.709 for HD) and colours shift. We keep the tags as
FFmpeg's own names (what ffprobe prints) so they read well in `probe --json` and in project
files, and convert to and from the integer codes only at the PyAV boundary.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# Code points -> FFmpeg names (libavutil/pixdesc.c). "Unspecified" (2) and reserved codes map to
# None: a tag nobody set is not a fact worth copying.
_PRIMARIES: dict[int, str] = {
    1: "bt709",
    4: "bt470m",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "film",
    9: "bt2020",
    10: "smpte428",
    11: "smpte431",
    12: "smpte432",
    22: "ebu3213",
}
_TRANSFER: dict[int, str] = {
    1: "bt709",
    4: "gamma22",
    5: "gamma28",
    6: "smpte170m",
    7: "smpte240m",
    8: "linear",
    9: "log100",
    10: "log316",
    11: "iec61966-2-4",
    12: "bt1361e",
    13: "iec61966-2-1",
    14: "bt2020-10",
    15: "bt2020-12",
    16: "smpte2084",
    17: "smpte428",
    18: "arib-std-b67",
}
_MATRIX: dict[int, str] = {
    0: "gbr",
    1: "bt709",
    4: "fcc",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "ycgco",
    9: "bt2020nc",
    10: "bt2020c",
    11: "smpte2085",
    12: "chroma-derived-nc",
    13: "chroma-derived-c",
    14: "ictcp",
}
_RANGE: dict[int, str] = {1: "tv", 2: "pc"}

_UNSPECIFIED = 2  # code for "unspecified" in primaries, transfer and matrix
_RANGE_UNSPECIFIED = 0


def _name(table: dict[int, str], code: Any) -> str | None:
    """Map a PyAV value (int or IntEnum, possibly None) to an FFmpeg name, None when unset."""
    if code is None:
        return None
    try:
        return table.get(int(code))
    except (TypeError, ValueError):
        return None


def _code(table: dict[int, str], name: str | None, unset: int) -> int:
    """Map an FFmpeg name back to its code point; unknown names raise so typos surface early."""
    if name is None:
        return unset
    for code, known in table.items():
        if known == name:
            return code
    raise ValueError(f"unknown colour tag {name!r}; expected one of {sorted(table.values())}")


@dataclass(frozen=True)
class ColorTags:
    """The four colour tags of a stream, as FFmpeg names; None means "not specified"."""

    primaries: str | None = None
    transfer: str | None = None
    matrix: str | None = None
    range: str | None = None

    @classmethod
    def from_codes(
        cls, primaries: Any = None, transfer: Any = None, matrix: Any = None, range: Any = None
    ) -> ColorTags:
        """Build from raw code points, as PyAV reports them on frames and codec contexts."""
        return cls(
            primaries=_name(_PRIMARIES, primaries),
            transfer=_name(_TRANSFER, transfer),
            matrix=_name(_MATRIX, matrix),
            range=_name(_RANGE, range),
        )

    @classmethod
    def from_av(cls, obj: Any) -> ColorTags:
        """Read the tags of a PyAV `VideoFrame` or video `CodecContext` (same attribute names)."""
        return cls.from_codes(
            getattr(obj, "color_primaries", None),
            getattr(obj, "color_trc", None),
            getattr(obj, "colorspace", None),
            getattr(obj, "color_range", None),
        )

    def merged(self, fallback: ColorTags) -> ColorTags:
        """Fill unset tags from `fallback` (frame tags win over container-level ones)."""
        return ColorTags(
            primaries=self.primaries or fallback.primaries,
            transfer=self.transfer or fallback.transfer,
            matrix=self.matrix or fallback.matrix,
            range=self.range or fallback.range,
        )

    @property
    def is_empty(self) -> bool:
        """True when no tag is set (nothing to copy to the output)."""
        return not any((self.primaries, self.transfer, self.matrix, self.range))

    def codes(self) -> dict[str, int]:
        """Code points keyed by PyAV attribute names, ready for `setattr` on a codec context/frame.

        Unset tags give FFmpeg's "unspecified" code, which encoders leave out of the bitstream.
        """
        return {
            "color_primaries": _code(_PRIMARIES, self.primaries, _UNSPECIFIED),
            "color_trc": _code(_TRANSFER, self.transfer, _UNSPECIFIED),
            "colorspace": _code(_MATRIX, self.matrix, _UNSPECIFIED),
            "color_range": _code(_RANGE, self.range, _RANGE_UNSPECIFIED),
        }

    def apply_to(self, obj: Any) -> None:
        """Write the tags onto a PyAV video codec context or frame (only the tags that are set)."""
        codes = self.codes()
        for attr, value in (
            ("color_primaries", self.primaries),
            ("color_trc", self.transfer),
            ("colorspace", self.matrix),
            ("color_range", self.range),
        ):
            if value is not None:
                setattr(obj, attr, codes[attr])

    def to_dict(self) -> dict[str, str | None]:
        """JSON-able form (project files, `probe --json`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColorTags:
        """Inverse of `to_dict`; missing keys are unset."""
        return cls(
            primaries=data.get("primaries"),
            transfer=data.get("transfer"),
            matrix=data.get("matrix"),
            range=data.get("range"),
        )


# swscale's names for the YUV matrices it implements (PyAV `Colorspace` members).
SWSCALE_MATRIX: dict[str, str] = {
    "bt709": "ITU709",
    "smpte170m": "ITU601",
    "bt470bg": "ITU601",
    "fcc": "FCC",
    "smpte240m": "SMPTE240M",
    "bt2020nc": "BT2020",
    "bt2020c": "BT2020",
}


def matrix_for_rgb(tags: ColorTags, height: int) -> str:
    """The YUV->RGB matrix to use when converting: the tagged one, else FFmpeg's size-based guess.

    Untagged SD material is BT.601 (smpte170m); HD and larger is BT.709, as players assume.
    """
    if tags.matrix:
        return tags.matrix
    return "bt709" if height >= 720 else "smpte170m"
