"""A timeline as subtitles or annotation tiers: SubRip, WebVTT, Audacity labels, ELAN.

Each writer is a pure function from a :class:`~emovox.inference.results.Timeline`
to text. The cues are the timeline's merged display segments
(:meth:`Timeline.merged`: neighbouring windows that agree joined, as the table
and the plot show them); every cue says its label and calibrated confidence
(``angry 0.82``), a non-answer also why (``unknown 0.41 (low confidence)``,
``no_speech (no speech found)``). Stretches without speech get no cue. Times
are in seconds from the start of the recording everywhere in this module; each
format then writes them in its own unit (milliseconds for SRT, WebVTT and
ELAN, seconds with six decimals for Audacity).

=========  =========  ===========================  ==================================
name       extension  media type                   what reads it
=========  =========  ===========================  ==================================
srt        .srt       application/x-subrip         video players, subtitle editors
vtt        .vtt       text/vtt                     browsers (``<track>``), players
audacity   .txt       text/plain                   Audacity (File > Import > Labels)
elan       .eaf       application/xml              ELAN (EAF 3.0, one tier "emotion")
=========  =========  ===========================  ==================================
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

from emovox.errors import ConfigError
from emovox.inference.results import Prediction, Timeline

__all__ = [
    "Cue",
    "TimelineFormat",
    "FORMATS",
    "cue_text",
    "timeline_cues",
    "to_srt",
    "to_vtt",
    "to_audacity",
    "to_eaf",
    "render_timeline",
    "get_format",
    "format_choices",
]

#: Name of the one ELAN tier (and of its linguistic type).
EAF_TIER = "emotion"
#: Short words for the reason codes of :data:`emovox.inference.results.REASONS`, as cues show them.
REASON_WORDS = {
    "no_speech": "no speech found",
    "too_little_speech": "too little speech",
    "low_confidence": "low confidence",
    "no_confident_speech": "no confident speech",
    "mixed": "mixed",
}


class Cue(NamedTuple):
    """One cue: ``start_s`` to ``end_s`` (seconds from the start of the recording) and its text."""

    start_s: float
    end_s: float
    text: str


def cue_text(segment: Prediction) -> str:
    """The text of one segment's cue: its label, confidence and, for a non-answer, its reason.

    ``"angry 0.82"``, ``"unknown 0.41 (low confidence)"``, ``"no_speech (no speech found)"``. The
    confidence is the calibrated probability of the top class, two decimals (as the ``emovox
    predict`` table shows it); ``no_speech`` has none.
    """
    parts = [segment.label]
    if segment.scores:
        parts.append(f"{segment.confidence:.2f}")
    if segment.reason:
        parts.append(f"({REASON_WORDS.get(segment.reason, segment.reason.replace('_', ' '))})")
    return " ".join(" ".join(parts).split())  # one line, whatever a label holds


def _ms(seconds: float) -> int:
    return max(0, int(round(float(seconds) * 1000)))


def timeline_cues(timeline: Timeline, *, max_gap_s: float = 1.0) -> list[Cue]:
    """The cues of ``timeline``: its merged segments in time order (see :meth:`Timeline.merged`).

    A segment shorter than a millisecond once rounded (none in practice) is
    left out: no format can show it.
    """
    return [
        Cue(seg.start_s, seg.end_s, cue_text(seg))
        for seg in timeline.merged(max_gap_s=max_gap_s)
        if _ms(seg.end_s) > _ms(seg.start_s)
    ]


def _clock(seconds: float, *, decimal: str) -> str:
    """``HH:MM:SS<decimal>mmm`` (hours grow past 99 if they must)."""
    ms = _ms(seconds)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{ms:03d}"


def to_srt(timeline: Timeline) -> str:
    """SubRip subtitles: numbered cues, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, the cue text, a blank line.

    A timeline without speech gives an empty file (no cues).
    """
    blocks = [
        f"{i}\n{_clock(c.start_s, decimal=',')} --> {_clock(c.end_s, decimal=',')}\n{c.text}\n"
        for i, c in enumerate(timeline_cues(timeline), start=1)
    ]
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(timeline: Timeline, *, title: str | None = None) -> str:
    """WebVTT subtitles: the ``WEBVTT`` header, a ``NOTE`` with the recording's summary, then the cues.

    Parameters
    ----------
    timeline : Timeline
    title : str or None
        Named in the note (e.g. the input file's name).
    """
    from emovox.inference.timeline import summary_text

    note = f"emovox emotion timeline{f' of {title}' if title else ''}: {summary_text(timeline.summary)}"
    lines = ["WEBVTT", "", "NOTE " + " ".join(note.replace("-->", "->").split()), ""]
    for i, c in enumerate(timeline_cues(timeline), start=1):
        lines += [
            str(i),
            f"{_clock(c.start_s, decimal='.')} --> {_clock(c.end_s, decimal='.')}",
            _vtt_escape(c.text),
            "",
        ]
    return "\n".join(lines)


def to_audacity(timeline: Timeline) -> str:
    """An Audacity label track: one ``start<TAB>end<TAB>text`` line per cue, times in seconds (6 decimals)."""
    return "".join(f"{c.start_s:.6f}\t{c.end_s:.6f}\t{c.text.replace(chr(9), ' ')}\n" for c in timeline_cues(timeline))


def _mime_type(path: str) -> str:
    """ELAN's media type for a file name (``audio/x-wav`` for WAV, as ELAN writes it)."""
    import mimetypes

    suffix = Path(path).suffix.lower()
    if suffix == ".wav":
        return "audio/x-wav"
    guessed = mimetypes.guess_type(path)[0]
    return guessed or "unknown"


def to_eaf(
    timeline: Timeline,
    *,
    media: str | os.PathLike | None = None,
    eaf_path: str | os.PathLike | None = None,
    author: str = "emovox",
    date: datetime | None = None,
) -> str:
    """An ELAN annotation document (EAF 3.0): one time-aligned tier ``"emotion"``, one annotation per cue.

    ``TIME_ORDER`` holds one ``TIME_SLOT`` per distinct cue boundary, in
    milliseconds (``TIME_UNITS="milliseconds"``), in time order; each
    ``ALIGNABLE_ANNOTATION`` refers to its start and end slots.

    Parameters
    ----------
    timeline : Timeline
    media : path or None
        The recording, linked in the header so ELAN opens it: an absolute
        path becomes a ``file://`` URL (and, with ``eaf_path``, a relative URL
        from the document's folder); a bare file name (e.g. an upload's) is
        linked relatively, next to the document. ``None``: no media link.
    eaf_path : path or None
        Where the document will be written (for the relative media URL).
    author : str
        The document's ``AUTHOR``.
    date : datetime or None
        The document's ``DATE`` (default: now, UTC).
    """
    stamp = (date or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    root = ET.Element(
        "ANNOTATION_DOCUMENT",
        {
            "AUTHOR": author,
            "DATE": stamp,
            "FORMAT": "3.0",
            "VERSION": "3.0",
            "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
            "xsi:noNamespaceSchemaLocation": "http://www.mpi.nl/tools/elan/EAFv3.0.xsd",
        },
    )
    cues = timeline_cues(timeline)
    header = ET.SubElement(root, "HEADER", {"MEDIA_FILE": "", "TIME_UNITS": "milliseconds"})
    if media is not None:
        media = os.fspath(media)
        if os.path.isabs(media):
            attrs = {"MEDIA_URL": Path(media).as_uri(), "MIME_TYPE": _mime_type(media)}
            if eaf_path is not None:
                rel = os.path.relpath(media, Path(eaf_path).absolute().parent)
                attrs["RELATIVE_MEDIA_URL"] = quote(("" if rel.startswith(".") else "./") + Path(rel).as_posix())
        else:
            url = "./" + quote(Path(media).name)
            attrs = {"MEDIA_URL": url, "MIME_TYPE": _mime_type(media), "RELATIVE_MEDIA_URL": url}
        ET.SubElement(header, "MEDIA_DESCRIPTOR", attrs)
    ET.SubElement(header, "PROPERTY", {"NAME": "lastUsedAnnotationId"}).text = str(len(cues))
    order = ET.SubElement(root, "TIME_ORDER")
    slots: dict[int, str] = {}
    for ms in sorted({_ms(t) for c in cues for t in (c.start_s, c.end_s)}):
        slots[ms] = f"ts{len(slots) + 1}"
        ET.SubElement(order, "TIME_SLOT", {"TIME_SLOT_ID": slots[ms], "TIME_VALUE": str(ms)})
    tier = ET.SubElement(root, "TIER", {"LINGUISTIC_TYPE_REF": EAF_TIER, "TIER_ID": EAF_TIER})
    for i, c in enumerate(cues, start=1):
        annotation = ET.SubElement(tier, "ANNOTATION")
        aligned = ET.SubElement(
            annotation,
            "ALIGNABLE_ANNOTATION",
            {"ANNOTATION_ID": f"a{i}", "TIME_SLOT_REF1": slots[_ms(c.start_s)], "TIME_SLOT_REF2": slots[_ms(c.end_s)]},
        )
        ET.SubElement(aligned, "ANNOTATION_VALUE").text = c.text
    ET.SubElement(
        root,
        "LINGUISTIC_TYPE",
        {"GRAPHIC_REFERENCES": "false", "LINGUISTIC_TYPE_ID": EAF_TIER, "TIME_ALIGNABLE": "true"},
    )
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


@dataclass(frozen=True)
class TimelineFormat:
    """One export format: its file ``extension``, HTTP ``media_type`` and ``write(timeline, **options) -> str``."""

    name: str
    extension: str
    media_type: str
    write: Callable[..., str]
    description: str


#: Export formats by name (what ``emovox predict --format`` and ``/v1/predict?format=`` take).
FORMATS: dict[str, TimelineFormat] = {
    "srt": TimelineFormat("srt", ".srt", "application/x-subrip", lambda t, **_: to_srt(t), "SubRip subtitles"),
    "vtt": TimelineFormat(
        "vtt", ".vtt", "text/vtt", lambda t, *, title=None, **_: to_vtt(t, title=title), "WebVTT subtitles"
    ),
    "audacity": TimelineFormat("audacity", ".txt", "text/plain", lambda t, **_: to_audacity(t), "Audacity label track"),
    "elan": TimelineFormat(
        "elan",
        ".eaf",
        "application/xml",
        lambda t, *, media=None, path=None, **_: to_eaf(t, media=media, eaf_path=path),
        "ELAN annotation document (EAF 3.0)",
    ),
}


def format_choices() -> str:
    """The format names as words: ``"srt, vtt, audacity or elan"``."""
    names = list(FORMATS)
    return ", ".join(names[:-1]) + " or " + names[-1]


def get_format(name: str) -> TimelineFormat:
    """The :data:`FORMATS` entry of ``name``; an unknown name is a :class:`ConfigError` listing them."""
    if name not in FORMATS:
        raise ConfigError(f"format {name!r} is unknown: use {format_choices()}")
    return FORMATS[name]


def render_timeline(
    timeline: Timeline,
    name: str,
    *,
    title: str | None = None,
    media: str | os.PathLike | None = None,
    path: str | os.PathLike | None = None,
) -> str:
    """``timeline`` as text in format ``name`` (a key of :data:`FORMATS`).

    ``title`` names the recording in a WebVTT note; ``media`` (the recording)
    and ``path`` (where the text goes) link the audio from an ELAN document.
    The other formats ignore them.
    """
    return get_format(name).write(timeline, title=title, media=media, path=path)
