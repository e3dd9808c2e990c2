"""The timeline as an HTML fragment, for a host's order page (:meth:`Timeline.to_html`).

Everything shown is escaped (subjects, names and event data come from
strangers' mail); the fragment has no script, no external asset and no
inline event handler, and its optional stylesheet is scoped to
``.ct-timeline`` so it does not restyle the host's page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from typing import Any, Final

from .timeline import AliasEvent, Timeline, TimelineEntry, moderation_flags
from .vocabulary import OrderEvent

__all__ = ["STYLESHEET", "render_html"]

#: The fragment's stylesheet: scoped to ``.ct-timeline``, no external asset.
STYLESHEET: Final = """\
.ct-timeline{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;\
max-width:60rem}
.ct-timeline h2{font-size:1.15rem;margin:0 0 .6rem}
.ct-timeline h3{font-size:1rem;margin:1rem 0 .4rem}
.ct-timeline table{border-collapse:collapse;width:100%}
.ct-timeline th,.ct-timeline td{text-align:left;padding:.25rem .5rem;vertical-align:top;\
border-bottom:1px solid #d0d7de}
.ct-timeline code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;word-break:break-all}
.ct-timeline ol{list-style:none;margin:0;padding:0}
.ct-timeline li.ct-entry{border-left:4px solid #8c959f;margin:0 0 .5rem;padding:.35rem .7rem;\
background:#f6f8fa}
.ct-timeline li.ct-message{border-left-color:#0969da;background:#f1f8ff}
.ct-timeline li.ct-inbound{border-left-color:#1a7f37;background:#f0fff4}
.ct-timeline li.ct-order{border-left-color:#8250df}
.ct-timeline li.ct-rejected,.ct-timeline li.ct-failed{border-left-color:#cf222e;background:#fff5f5}
.ct-timeline li.ct-flagged{border-left-color:#bf8700}
.ct-timeline li.ct-audit{border-left-color:#bf8700;background:#fff8e5}
.ct-timeline li.ct-rule{border-left-color:#953800;background:#fff1e5}
.ct-timeline .ct-when{color:#57606a;font-size:.85em;margin-right:.5rem}
.ct-timeline .ct-badge{display:inline-block;border-radius:1em;padding:0 .55em;font-size:.8em;\
font-weight:600;background:#eaeef2;margin-right:.35rem}
.ct-timeline .ct-warn{background:#ffebe9;color:#a40e26}
.ct-timeline .ct-ok{background:#dafbe1;color:#116329}
.ct-timeline .ct-status-active{color:#116329}
.ct-timeline .ct-status-ended,.ct-timeline .ct-status-expired{color:#9a6700}
.ct-timeline .ct-status-revoked{color:#a40e26}
.ct-timeline .ct-subject{font-weight:600}
.ct-timeline .ct-words,.ct-timeline .ct-notes{color:#57606a;margin:.15rem 0 0}
.ct-timeline dl{margin:.15rem 0 0;display:grid;grid-template-columns:max-content auto;gap:0 .6rem}
.ct-timeline dt{color:#57606a}
.ct-timeline dd{margin:0}
"""

#: Event names and the class and label that mark them.
_MARKS: Final = {
    "delivery-rejected": ("ct-rejected", "delivery rejected"),
    "delivery-failed": ("ct-failed", "delivery failed"),
    "alias-unmasked": ("ct-audit", "unmask audit"),
    "message-refused": ("ct-rejected", "refused by moderation"),
    "state-changed": ("ct-rule", "conversation state"),
    "sender-blocked": ("ct-rule", "sender blocked"),
    "sender-unblocked": ("ct-rule", "sender unblocked"),
    "opted-out": ("ct-rule", "opted out of non-critical messages"),
    "notification-suppressed": ("ct-rule", "notification suppressed"),
}


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def render_html(timeline: Timeline, *, include_real_addresses: bool, stylesheet: bool) -> str:
    """The fragment (see :meth:`ct_alias.Timeline.to_html`)."""
    data = timeline.to_dict(include_real_addresses=include_real_addresses)
    messages = {m["id"]: m for m in data["messages"]}
    events = {e["id"]: e for e in data["events"]}
    parts = [f'<section class="ct-timeline" data-conversation="{_e(timeline.conversation)}">']
    if stylesheet:
        parts.append(f"<style>\n{STYLESHEET}</style>")
    parts.append(f"<h2>Conversation <code>{_e(timeline.conversation)}</code></h2>")
    parts.append(_participants(data["participants"], real=include_real_addresses))
    parts.append("<h3>Timeline</h3>")
    if not timeline.entries:
        parts.append('<p class="ct-notes">Nothing recorded yet.</p>')
    else:
        parts.append('<ol class="ct-entries">')
        for entry in timeline.entries:
            key = str(entry.seq)
            if key in messages:
                parts.append(_message(entry, messages[key]))
            else:
                parts.append(_event(entry, events[key]))
        parts.append("</ol>")
    if timeline.next_after is not None:
        parts.append(
            '<p class="ct-notes">More entries follow: read the next page after '
            f"<code>{_e(timeline.next_after)}</code>.</p>"
        )
    parts.append("</section>")
    return "\n".join(parts) + "\n"


def _participants(participants: list[dict[str, Any]], *, real: bool) -> str:
    head = ["Role", "Mask type", "Status", "Alias", "Expires (UTC)"]
    if real:
        head.append("Real address")
    rows = ["<h3>Participants</h3>", '<table class="ct-participants">', "<thead><tr>"]
    rows += [f'<th scope="col">{_e(h)}</th>' for h in head]
    rows.append("</tr></thead><tbody>")
    if not participants:
        rows.append(f'<tr><td colspan="{len(head)}">No participants.</td></tr>')
    for p in participants:
        status = str(p["status"])
        cells = [
            _e(p["role"]),
            _e(p["aliasMaskType"]),
            f'<span class="ct-status-{_e(status)}">{_e(status)}</span>',
            f"<code>{_e(p['emailAlias'])}</code>",
            _e(_when(p["expiresAt"])),
        ]
        if real:
            cells.append(f"<code>{_e(p.get('realAddress') or '')}</code>")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    rows.append("</tbody></table>")
    return "\n".join(rows)


def _when(iso: str | None) -> str:
    """``2026-01-01T12:00:00Z`` shown as ``2026-01-01 12:00``."""
    return "" if not iso else iso[:16].replace("T", " ")


def _time(entry: TimelineEntry) -> str:
    iso = entry.at.isoformat().replace("+00:00", "Z")
    shown = entry.at.strftime("%Y-%m-%d %H:%M UTC")
    return f'<time class="ct-when" datetime="{_e(iso)}">{_e(shown)}</time>'


def _mailbox(item: Mapping[str, Any] | None, raw: Mapping[str, Any] | None) -> str:
    """One mailbox of the export; ``raw`` is the stored item (for its ``unverified`` mark)."""
    if not item:
        return '<span class="ct-who">nobody</span>'
    bits: list[str] = []
    if item.get("name"):
        bits.append(_e(item["name"]))
    if item.get("role"):
        bits.append(f'<span class="ct-badge">{_e(item["role"])}</span>')
    address = item.get("emailAlias") or item.get("email")
    if item.get("emailAlias") and item.get("email"):
        address = f"{item['emailAlias']} = {item['email']}"
    if address:
        bits.append(f"<code>{_e(address)}</code>")
    elif item.get("role"):
        bits.append("<em>(purged)</em>")
    if raw is not None and raw.get("unverified"):
        bits.append('<span class="ct-badge ct-warn">unverified sender</span>')
    return f'<span class="ct-who">{" ".join(bits) or "(no name)"}</span>'


def _mailboxes(items: list[Mapping[str, Any]], raws: Iterable[Any]) -> str:
    raw_list = [r if isinstance(r, Mapping) else None for r in raws]
    raw_list += [None] * (len(items) - len(raw_list))
    return ", ".join(_mailbox(i, r) for i, r in zip(items, raw_list, strict=False)) or "nobody"


def _message(entry: TimelineEntry, m: Mapping[str, Any]) -> str:
    data = entry.data
    direction = str(m["direction"])
    raw_from = list(data.get("from", ()))
    unverified = any(isinstance(r, Mapping) and r.get("unverified") for r in raw_from)
    relay = data.get("relay")
    if isinstance(relay, Mapping) and relay.get("sender") == "unverified":
        unverified = True
    classes = f"ct-entry ct-message ct-{_e(direction)}"
    if unverified:
        classes += " ct-unverified"
    flags = moderation_flags(entry)
    if flags:
        classes += " ct-flagged"
    head = [
        _time(entry),
        f'<span class="ct-badge">{_e(direction)} message</span>',
    ]
    if unverified:
        head.append('<span class="ct-badge ct-warn">unverified sender</span>')
    if flags:
        head.append('<span class="ct-badge ct-warn">flagged</span>')
    auth = data.get("authentication")
    if isinstance(auth, Mapping):
        head.append(_authentication(auth))
    out = [f'<li class="{classes}" id="ct-entry-{_e(entry.seq)}">', "<div>" + "".join(head)]
    out.append(f'<span class="ct-subject">{_e(m["subject"] or "(no subject)")}</span></div>')
    sender = _mailbox(m["from"], raw_from[0] if raw_from else None)
    out.append(
        f"<div>From {sender} to {_mailboxes(m['to'], data.get('to', ()))}"
        + (f" cc {_mailboxes(m['cc'], data.get('cc', ()))}" if m["cc"] else "")
        + "</div>"
    )
    if m["firstWords"]:
        out.append(f'<p class="ct-words">{_e(m["firstWords"])}</p>')
    notes = _notes(m, relay, flags)
    if notes:
        out.append(f'<p class="ct-notes">{" · ".join(notes)}</p>')
    out.append("</li>")
    return "\n".join(out)


def _notes(m: Mapping[str, Any], relay: object, flags: list[dict[str, Any]]) -> list[str]:
    """The notes under a message: attachments, what the relay left out, flags, defects."""
    notes = []
    if m["attachmentNames"]:
        notes.append("attachments: " + ", ".join(_e(n) for n in m["attachmentNames"]))
    if isinstance(relay, Mapping):
        dropped = relay.get("dropped")
        counts = dropped.items() if isinstance(dropped, Mapping) else ()
        shown = ", ".join(f"{_e(k)} \u00d7{_e(v)}" for k, v in counts if v)
        if shown:
            notes.append(f"the relay left out: {shown}")
    if flags:
        notes.append(
            "flagged: "
            + "; ".join(f"{_e(f.get('reason', ''))} ({_e(f.get('moderator', ''))})" for f in flags)
        )
    if m["defects"]:
        notes.append("defects: " + "; ".join(_e(d) for d in m["defects"]))
    return notes


def _authentication(auth: Mapping[str, Any]) -> str:
    verdict = str(auth.get("verdict") or "none")
    method = str(auth.get("method") or "none")
    domain = auth.get("domain")
    if verdict == "none":
        text = "not authenticated"
    else:
        text = f"{method} {verdict}" + (f" ({domain})" if domain else "")
    kind = "ct-ok" if verdict == "pass" else "ct-warn"
    return f'<span class="ct-badge {kind}" title="sender authentication">{_e(text)}</span>'


def _event(entry: TimelineEntry, e: Mapping[str, Any]) -> str:
    name = str(e["event"])
    mark, label = _MARKS.get(name, ("", name))
    if not mark:
        if name in OrderEvent._value2member_map_:
            mark = "ct-order"
        elif name in AliasEvent._value2member_map_:
            mark = "ct-alias"
        else:
            mark = "ct-custom"
    badge = "ct-badge ct-warn" if name in _MARKS else "ct-badge"
    out = [
        f'<li class="ct-entry ct-event {mark}" id="ct-entry-{_e(entry.seq)}">',
        f'<div>{_time(entry)}<span class="{badge}">{_e(label)}</span>',
    ]
    if "participant" in e:
        out.append(_mailbox(e["participant"], None))
    out.append("</div>")
    details = {k: v for k, v in e["data"].items() if k not in {"role", "strategy", "slot"}}
    if details:
        out.append("<dl>")
        for key, value in details.items():
            out.append(f"<dt>{_e(key)}</dt><dd>{_e(_plain(value))}</dd>")
        out.append("</dl>")
    out.append("</li>")
    return "\n".join(out)


def _plain(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "-"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_plain(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value)
    return str(value)
