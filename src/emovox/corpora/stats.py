"""Counts of a corpus per class and per speaker, as a dict and as a text table."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from emovox.corpora.records import Record
from emovox.labels import LabelScheme, apply_scheme, classes_present, resolve_scheme


def corpus_stats(records: Sequence[Record], *, scheme: str | LabelScheme | Mapping | None = None) -> dict:
    """Counts per class and per speaker, JSON-ready.

    Parameters
    ----------
    records : sequence of Record
    scheme : str, LabelScheme or Mapping, optional
        Count the scheme's classes (records it drops are counted in
        ``n_dropped``); by default the canonical emotions present.

    Returns
    -------
    dict
        ``n_records``, ``n_dropped``, ``scheme``, ``classes`` (ordered),
        ``corpora``, ``per_class`` {class: n}, ``per_speaker`` {speaker_key:
        {"gender", "total", "per_class"}}, ``genders`` {gender: n}.
    """
    if scheme is None:
        kept = list(records)
        classes = classes_present([r.emotion for r in kept])
        names = [r.emotion for r in kept]
        scheme_name = None
    else:
        resolved = resolve_scheme(scheme)
        kept, indices = apply_scheme(records, resolved)
        present = set(indices.tolist())
        classes = tuple(c for i, c in enumerate(resolved.classes) if i in present)
        names = [resolved.classes[i] for i in indices]
        scheme_name = resolved.name
    per_class = Counter(names)
    per_speaker: dict[str, dict] = {}
    for record, name in zip(kept, names):
        entry = per_speaker.setdefault(
            record.speaker_key, {"gender": record.gender, "total": 0, "per_class": Counter()}
        )
        entry["total"] += 1
        entry["per_class"][name] += 1
    return {
        "n_records": len(kept),
        "n_dropped": len(records) - len(kept),
        "scheme": scheme_name,
        "classes": list(classes),
        "corpora": dict(sorted(Counter(r.corpus for r in kept).items())),
        "per_class": {c: per_class[c] for c in classes},
        "per_speaker": {
            key: {
                "gender": entry["gender"],
                "total": entry["total"],
                "per_class": {c: entry["per_class"][c] for c in classes},
            }
            for key, entry in sorted(per_speaker.items())
        },
        "genders": dict(sorted(Counter(str(r.gender) if r.gender else "unknown" for r in kept).items())),
    }


def format_stats(stats: dict, *, title: str = "") -> str:
    """A plain-text table of :func:`corpus_stats`: classes, then speakers x classes."""
    classes = stats["classes"]
    lines = []
    head = f"{stats['n_records']} recordings, {len(stats['per_speaker'])} speakers, {len(classes)} classes"
    if stats["scheme"]:
        head += f" (scheme {stats['scheme']}, {stats['n_dropped']} dropped)"
    lines.append(f"{title}: {head}" if title else head)
    genders = ", ".join(f"{g} {n}" for g, n in stats["genders"].items())
    lines.append(f"genders: {genders}")
    lines.append("")
    width = max([len("class")] + [len(c) for c in classes])
    lines.append(f"{'class':<{width}}  {'count':>6}  {'share':>6}")
    total = max(stats["n_records"], 1)
    for c in classes:
        n = stats["per_class"][c]
        lines.append(f"{c:<{width}}  {n:>6}  {100 * n / total:>5.1f}%")
    lines.append("")
    speakers = stats["per_speaker"]
    sw = max([len("speaker")] + [len(s) for s in speakers])
    cols = [max(len(c), 4) for c in classes]
    header = f"{'speaker':<{sw}}  {'gender':<7}  {'total':>5}  " + "  ".join(f"{c:>{w}}" for c, w in zip(classes, cols))
    lines.append(header.rstrip())
    for key, entry in speakers.items():
        row = f"{key:<{sw}}  {entry['gender'] or '-':<7}  {entry['total']:>5}  " + "  ".join(
            f"{entry['per_class'][c]:>{w}}" for c, w in zip(classes, cols)
        )
        lines.append(row.rstrip())
    return "\n".join(lines)
