"""Plain-text rendering of a timeline, for the command line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .timeline import EntryKind, Timeline

__all__ = ["render_table", "render_timeline"]


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; the last column is not padded."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, ["-" * w for w in widths], *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _who(item: dict[str, Any] | None) -> str:
    if not item:
        return "?"
    if item.get("role"):
        return str(item["role"])
    return str(item.get("email") or item.get("name") or "?")


def render_timeline(timeline: Timeline) -> str:
    """The participants and the entries of a timeline, as two tables."""
    data = timeline.to_dict()
    participants = render_table(
        ["role", "mask", "status", "expires", "alias"],
        [
            [
                p["role"],
                p["aliasMaskType"],
                p["status"],
                (p["expiresAt"] or "")[:10],
                p["emailAlias"],
            ]
            for p in data["participants"]
        ],
    )
    messages = {m["id"]: m for m in data["messages"]}
    events = {e["id"]: e for e in data["events"]}
    rows = []
    for entry in timeline.entries:
        when = entry.at.strftime("%Y-%m-%d %H:%M")
        key = str(entry.seq)
        if entry.kind is EntryKind.MESSAGE:
            m = messages[key]
            to = ", ".join(_who(t) for t in m["to"]) or "?"
            attachments = f" [{', '.join(m['attachmentNames'])}]" if m["attachmentNames"] else ""
            detail = f"{_who(m['from'])} -> {to}: {m['subject']!r}{attachments}"
            senders = entry.data.get("from", ())
            if any(isinstance(s, dict) and s.get("unverified") for s in senders):
                detail += " [unverified sender]"
            rows.append([when, f"{entry.name} message", detail])
        else:
            e = events[key]
            bits = [_who(e["participant"])] if "participant" in e else []
            bits += [
                f"{k}={v}" for k, v in e["data"].items() if k not in {"role", "strategy", "slot"}
            ]
            rows.append([when, entry.name, " ".join(bits)])
    entries = render_table(["time (UTC)", "entry", "details"], rows)
    more = f"\n(more: --after {timeline.next_after})" if timeline.next_after else ""
    return f"conversation {timeline.conversation}\n\n{participants}\n\n{entries}{more}"
