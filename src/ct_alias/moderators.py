r"""The moderators that ship with ct_alias: attachment types and sizes, contact details.

Each is a frozen value with a ``name`` (how the timeline names it) and an
``action`` (what a finding does: :attr:`~ct_alias.moderation.Action.FLAG` or
:attr:`~ct_alias.moderation.Action.REFUSE`). Give them to the relay::

    Relay(tracker, moderators=[AttachmentTypes(), AttachmentSize(), ContactDetails()])

or to ``ct-alias serve --moderate attachment-types --moderate contact-details``.

>>> from ct_alias.moderation import MessageView
>>> view = MessageView.read(b"Subject: oi\r\n\r\nwa.me/5511987654321 ou (11) 98765-4321\r\n")
>>> ContactDetails()(view).reason
'contact details in the message: a phone number, a messaging app link'
>>> ContactDetails(action=Action.REFUSE)(view).action
<Action.REFUSE: 'refuse'>
"""

from __future__ import annotations

import enum
import mimetypes
import re
from collections.abc import Iterable
from typing import Final

from attrs import field, frozen

from .errors import InvalidArgument
from .moderation import Action, Attachment, MessageView, Verdict, clean_reason

__all__ = [
    "DANGEROUS_EXTENSIONS",
    "DEFAULT_ATTACHMENT_TYPES",
    "DEFAULT_MAX_ATTACHMENT",
    "AttachmentSize",
    "AttachmentTypes",
    "Contact",
    "ContactDetails",
]

#: What :class:`AttachmentTypes` allows by default: pictures, PDF, plain text.
DEFAULT_ATTACHMENT_TYPES: Final = (
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/heic",
    "image/heif",
    "application/pdf",
    "text/plain",
    "text/csv",
)
#: File name extensions refused whatever type they claim: programs and scripts
#: a double click runs, and disk images that carry them.
DANGEROUS_EXTENSIONS: Final = frozenset(
    {
        "ade", "adp", "apk", "app", "appx", "bat", "cab", "chm", "cmd", "com", "cpl", "dll",
        "dmg", "exe", "hta", "img", "ins", "iso", "isp", "jar", "js", "jse", "lib", "lnk", "mde",
        "msc", "msi", "msix", "msp", "mst", "nsh", "pif", "ps1", "reg", "scr", "sct", "shb", "sh",
        "sys", "vb", "vbe", "vbs", "vhd", "vhdx", "vxd", "wsc", "wsf", "wsh",
    }
)  # fmt: skip
_TYPES: Final = mimetypes.MimeTypes()  # the built-in table only: the same on every host


def _action(value: object) -> Action:
    if value in (Action.FLAG, Action.REFUSE):
        return Action(value)  # type: ignore[arg-type]
    raise InvalidArgument("action", "must be Action.FLAG or Action.REFUSE")


def _types(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        raise InvalidArgument("allowed", "expected a collection of types, not one str")
    types = frozenset(str(t).strip().lower() for t in value)
    if not all(re.fullmatch(r"[a-z0-9.+-]+/(?:\*|[a-z0-9.+-]+)", t) for t in types):
        raise InvalidArgument("allowed", "types are written type/subtype or type/*")
    return types


def _shown(attachment: Attachment) -> str:
    return attachment.content_type + (f" ({attachment.filename})" if attachment.filename else "")


@frozen
class AttachmentTypes:
    """Allows attachments of the listed types only.

    A part is judged by its declared type and, when its file name has an
    extension, by that too: the extension must not be a program's
    (:data:`DANGEROUS_EXTENSIONS`) and, when the built-in
    :mod:`mimetypes` table knows it, must stand for an allowed type
    (``invoice.pdf.exe`` declared ``application/pdf`` is refused).

    Args:
        allowed: ``type/subtype`` or ``type/*``; default
            :data:`DEFAULT_ATTACHMENT_TYPES`.
        action: what to do with the message otherwise: refuse (default) or flag.
    """

    allowed: frozenset[str] = field(default=DEFAULT_ATTACHMENT_TYPES, converter=_types)
    action: Action = field(default=Action.REFUSE, converter=_action)
    name: str = field(default="attachment-types", kw_only=True)

    def _allows(self, content_type: str) -> bool:
        major = content_type.partition("/")[0]
        return content_type in self.allowed or f"{major}/*" in self.allowed

    def __call__(self, message: MessageView, /) -> Verdict:
        """Judge the message's attachments."""
        for attachment in message.attachments:
            bad = not self._allows(attachment.content_type)
            name = attachment.filename
            if not bad and name is not None and "." in name:
                extension = name.rpartition(".")[2].strip().lower()
                guessed, _ = _TYPES.guess_type("x." + extension, strict=False)
                bad = extension in DANGEROUS_EXTENSIONS or (
                    guessed is not None and not self._allows(guessed)
                )
            if bad:
                reason = f"attachment type not allowed: {_shown(attachment)}"
                return Verdict(self.action, clean_reason(reason))
        return Verdict.allow()


def _positive(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidArgument("max_bytes", "must be a positive number of bytes")
    return value


#: :class:`AttachmentSize`'s default limit: 10 MiB per attachment.
DEFAULT_MAX_ATTACHMENT: Final = 10 * 1024 * 1024


def _size(octets: int) -> str:
    for unit, name in ((1024 * 1024, "MiB"), (1024, "KiB")):
        if octets >= unit and octets % unit == 0:
            return f"{octets // unit} {name}"
    return f"{octets} bytes"


@frozen
class AttachmentSize:
    """Refuses (or flags) a message with an attachment larger than ``max_bytes``.

    The size is that of the decoded content (base64 is about a third
    smaller than it travels; quoted-printable is counted as it travels).

    Args:
        max_bytes: the largest attachment allowed; default 10 MiB.
        action: refuse (default) or flag.
    """

    max_bytes: int = field(default=DEFAULT_MAX_ATTACHMENT, converter=_positive)
    action: Action = field(default=Action.REFUSE, converter=_action)
    name: str = field(default="attachment-size", kw_only=True)

    def __call__(self, message: MessageView, /) -> Verdict:
        """Judge the message's attachments."""
        for attachment in message.attachments:
            if attachment.size > self.max_bytes:
                reason = (
                    f"attachment larger than {_size(self.max_bytes)}: {_shown(attachment)}, "
                    f"{_size(attachment.size)}"
                )
                return Verdict(self.action, clean_reason(reason))
        return Verdict.allow()


class Contact(enum.StrEnum):
    """The kinds of contact detail :class:`ContactDetails` looks for."""

    EMAIL = "an e-mail address"
    PHONE = "a phone number"
    MESSAGING = "a messaging app link"


#: Links to messaging apps: WhatsApp, Telegram, Messenger, Instagram, Signal, LINE, Viber.
_MESSAGING: Final = re.compile(
    r"(?<![\w.-])(?:https?://)?(?:www\.)?"
    r"(?:wa\.me|wa\.link|(?:api\.|chat\.|web\.)?whatsapp\.com|t\.me|telegram\.(?:me|dog)"
    r"|m\.me|ig\.me|messenger\.com|signal\.me|line\.me|viber\.click)\b"
    r"|\b(?:whatsapp|tg|viber|sgnl)://",
    re.IGNORECASE,
)
#: A run that may be a phone number: an optional ``+``, a digit, then 7 to 16
#: more digits, each after at most three separators. Each repetition takes
#: one digit and separators are never digits: no catastrophic backtracking.
_PHONE_RUN: Final = re.compile(
    r"(?<![\w+/.,-])\+?(?:\(\s?)?\d(?:[\s().-]{0,3}\d){7,16}(?![\w/]|[.,-]\d)"
)
_SEPARATOR: Final = re.compile(r"[\s().-]")


#: Every messaging link holds one of these (lower case): a cheap test before the pattern.
_MESSAGING_HINTS: Final = (".me", "whatsapp", "messenger.com", "wa.link", "viber", "://", ".dog")


def _messaging(text: str) -> bool:
    lowered = text.lower()
    if not any(hint in lowered for hint in _MESSAGING_HINTS):
        return False
    return _MESSAGING.search(text) is not None


def _is_phone(run: str) -> bool:
    """Whether a digit run reads as a phone number (Brazilian formats, or international).

    International: ``+`` and 8-15 digits (E.164). Brazilian, without ``+``:
    an area code (DDD, two digits 1-9) and a mobile number (9 and 8 more
    digits) or a landline (2-5 and 7 more), optionally after ``0`` or
    ``55``; or, written with a separator before the last four digits, a
    number without the area code (``98765-4321``).
    """
    digits = "".join(c for c in run if c.isdigit())
    if run.startswith("+"):
        return 8 <= len(digits) <= 15
    if len(digits) in (12, 13) and digits.startswith("55"):
        digits = digits[2:]
    elif len(digits) in (11, 12) and digits.startswith("0"):
        digits = digits[1:]
    if len(digits) in (10, 11) and "0" not in digits[:2]:
        local = digits[2:]
        return (len(local) == 9 and local[0] == "9") or (len(local) == 8 and local[0] in "2345")
    if len(digits) in (8, 9) and _SEPARATOR.search(run[-5:-4] or " ") is not None:
        return (len(digits) == 9 and digits[0] == "9") or (len(digits) == 8 and digits[0] in "2345")
    return False


def _phones(text: str) -> bool:
    return any(_is_phone(m.group()) for m in _PHONE_RUN.finditer(text))


def _kinds(value: Iterable[Contact]) -> frozenset[Contact]:
    kinds = frozenset(value)
    if not kinds or not all(isinstance(k, Contact) for k in kinds):
        raise InvalidArgument("kinds", "must be some of Contact.EMAIL, .PHONE, .MESSAGING")
    return kinds


@frozen
class ContactDetails:
    """Flags (or refuses) messages that share contact details outside the conversation.

    It looks, in the subject, the text and the links, for:

    - e-mail addresses (the view replaced them by ``[address]``: aliases do
      not count), including spellings such as ``maria (at) x (dot) com``;
    - phone numbers: international ones written with ``+`` and Brazilian
      ones (``(11) 98765-4321``, ``+55 11 98765-4321``, ``011 3456-7890``,
      ``11987654321``, ``98765-4321``);
    - links to messaging apps (``wa.me``, ``api.whatsapp.com``, ``t.me``,
      ``m.me``, ``ig.me``, ``signal.me``, ``whatsapp://``…).

    The reason names the kinds found, never the details themselves.

    Args:
        action: flag (default) or refuse.
        kinds: the kinds to look for; default all of :class:`Contact`.
    """

    action: Action = field(default=Action.FLAG, converter=_action)
    kinds: frozenset[Contact] = field(default=frozenset(Contact), converter=_kinds)
    name: str = field(default="contact-details", kw_only=True)

    def found(self, message: MessageView) -> list[Contact]:
        """The kinds of contact detail in the message, in :class:`Contact` order."""
        text = message.text
        links = "\n".join(message.links)
        found = []
        if Contact.EMAIL in self.kinds and message.addresses:
            found.append(Contact.EMAIL)
        if Contact.PHONE in self.kinds and (_phones(text) or _phones(links)):
            found.append(Contact.PHONE)
        if Contact.MESSAGING in self.kinds and (_messaging(text) or _messaging(links)):
            found.append(Contact.MESSAGING)
        return found

    def __call__(self, message: MessageView, /) -> Verdict:
        """Judge the message's text."""
        found = self.found(message)
        if not found:
            return Verdict.allow()
        reason = "contact details in the message: " + ", ".join(found)
        return Verdict(self.action, clean_reason(reason))
