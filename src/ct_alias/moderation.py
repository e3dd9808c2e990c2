r"""Moderation of relayed mail: a host's rules see a read-only view and return a verdict.

A :class:`~ct_alias.relay.Relay` given ``moderators=[...]`` shows each message
it is about to deliver, as a :class:`MessageView`, to each moderator in turn.
A moderator is any callable that takes the view and returns a
:class:`Verdict`:

- :meth:`Verdict.allow`: nothing to say;
- :meth:`Verdict.flag`: deliver, and mark the message on the timeline with
  the reason (under ``relay.moderation`` of its entry, shown in the JSON and
  HTML timelines);
- :meth:`Verdict.refuse`: answer ``550 5.7.1`` with the reason (a person
  reads it in the bounce) and record a ``message-refused`` event with it.
  The first refusal ends the moderation of that message.

A moderator that raises, or returns anything but a verdict, fails the message
*for now*: :func:`moderate` raises :class:`~ct_alias.errors.ModeratorFailed`
and the relay answers ``451 4.3.0`` (the sender's server tries again later)
rather than deliver mail that was not moderated. The relay logs the
moderator's name and the error's type, never its text.

What a moderator sees, and what it never does: the view holds the subject,
the header fields a recipient would see anyway (``Date``, ``Content-Type``,
``Auto-Submitted``…, never an address field, a trace field or a message id),
the text of the text parts (HTML reduced to its visible text, plus its link
targets), and each other part's type, file name and size. Every address in
any of them, an alias or a real address, in any spelling the view
recognises (``maria@x.com``, ``maria (at) x (dot) com``, ``maria arroba
x.com``), is replaced by ``[address]`` (``[alias]`` for an address under an
alias domain, which only stands for a participant); :attr:`MessageView.addresses`
counts the ``[address]`` ones. Moderators cannot rewrite anything: the view
is frozen, and the delivered body is the body that came.

Three moderators ship in :mod:`ct_alias.moderators`: an allowlist of
attachment types, a size limit per attachment, and a detector of contact
details (e-mail addresses, phone numbers, links to messaging apps) that flags
by default.

>>> view = MessageView.read(
...     b"Subject: oi\r\n\r\nMe chama no zap: (11) 98765-4321 ou maria@example.com\r\n"
... )
>>> view.texts, view.addresses
(('Me chama no zap: (11) 98765-4321 ou [address]',), 1)
>>> def no_zap(message: MessageView) -> Verdict:
...     if "zap" in message.text.lower():
...         return Verdict.flag("mentions WhatsApp")
...     return Verdict.allow()
>>> moderate(view, [no_zap]).flags
(Finding(moderator='no_zap', action=<Action.FLAG: 'flag'>, reason='mentions WhatsApp'),)
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Final, Protocol, runtime_checkable

from attrs import evolve, field, frozen

from .errors import InvalidArgument, ModeratorFailed
from .mail import KEPT_FIELDS, HeaderField, get_first, parse_headers, split_message
from .mail._content import Attachment, read_content, redact_addresses
from .mail._headers import safe_text
from .timeline import Direction
from .vocabulary import ModerationEvent, Role

__all__ = [
    "ADDRESS",
    "ALIAS",
    "Action",
    "Attachment",
    "Finding",
    "Judgement",
    "MessageView",
    "ModerationEvent",
    "Moderator",
    "Verdict",
    "moderate",
    "moderator_name",
]

# Its public home is this module (it is read where the MIME walk is).
Attachment.__module__ = __name__

#: A reason is cut to this many characters.
MAX_REASON: Final = 200
_MAX_NAME: Final = 64
#: The placeholders that stand for addresses in a view.
ADDRESS: Final = "[address]"
ALIAS: Final = "[alias]"


class Action(enum.StrEnum):
    """What a verdict asks the relay to do."""

    ALLOW = "allow"
    FLAG = "flag"
    REFUSE = "refuse"


def _reason(reason: object) -> str:
    """``reason`` on one line, without control characters or addresses, cut to 200."""
    if not isinstance(reason, str):
        raise InvalidArgument("reason", f"expected a str, not {type(reason).__name__}")
    text = " ".join(safe_text(reason).split())
    text, _ = redact_addresses(text, lambda _: ADDRESS)
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "\u2026"


def clean_reason(reason: object) -> str:
    """:func:`_reason`, and never empty (a flag or a refusal says why)."""
    text = _reason(reason)
    if not text:
        raise InvalidArgument("reason", "a flag or a refusal needs a reason a person can read")
    return text


def _action_of(value: object) -> Action:
    if isinstance(value, str) and value in Action._value2member_map_:
        return Action(value)
    raise InvalidArgument("action", "must be allow, flag or refuse")


@frozen
class Verdict:
    """A moderator's answer about one message; make one with its class methods.

    Attributes:
        action: allow, flag or refuse.
        reason: why (empty for allow): one line, at most 200 characters, any
            address in it replaced by ``[address]``, however the verdict was
            made (no line break ever reaches an SMTP reply). It is shown to
            the sender in a refusal and to the store on the timeline.

    Raises:
        InvalidArgument: an unknown action, or a flag or refusal without a reason.
    """

    action: Action = field(converter=_action_of)
    reason: str = field(default="", converter=_reason)

    def __attrs_post_init__(self) -> None:
        """A flag or a refusal made directly (not by its class method) says why too."""
        if self.action is not Action.ALLOW and not self.reason:
            raise InvalidArgument("reason", "a flag or a refusal needs a reason a person can read")

    @classmethod
    def allow(cls) -> Verdict:
        """Nothing to say about the message."""
        return cls(Action.ALLOW)

    @classmethod
    def flag(cls, reason: str) -> Verdict:
        """Deliver the message and mark it on the timeline with ``reason``.

        Raises:
            InvalidArgument: ``reason`` is not a non-blank str.
        """
        return cls(Action.FLAG, clean_reason(reason))

    @classmethod
    def refuse(cls, reason: str) -> Verdict:
        """Refuse the message (``550 5.7.1``) with ``reason``, recorded on the timeline.

        Raises:
            InvalidArgument: ``reason`` is not a non-blank str.
        """
        return cls(Action.REFUSE, clean_reason(reason))


@frozen(kw_only=True)
class MessageView:
    """What a moderator sees of one message for one recipient; read-only, address-free.

    Attributes:
        store: the store of the recipient's conversation.
        conversation: the conversation (order id).
        direction: ``inbound`` (to the store) or ``outbound`` (to the customer).
        recipient_role: the role of the alias the message was sent to.
        sender_verified: whether the authenticator vouched for the author's
            domain (see :mod:`ct_alias.auth`).
        subject: the subject, decoded.
        headers: ``(name, value)`` of the fields a recipient sees as they came
            (:data:`~ct_alias.mail.KEPT_FIELDS`: ``Date``, ``Content-Type``,
            ``Auto-Submitted``, ``Subject``…), values decoded, in order.
        texts: the text of each text part, whitespace collapsed (HTML: its
            visible text), in order; :data:`~ct_alias.mail._content.MAX_TEXT`
            characters in all at most.
        links: the link targets (``href``) of the HTML parts.
        attachments: every part that is not the message's text, in order:
            its type, file name and size.
        size: the size of the whole message in octets.
        addresses: how many addresses (not aliases) were replaced by
            ``[address]`` in the subject, texts and links.
        truncated: some text was not read (beyond the bounds).
        defects: what was malformed in the parts.
    """

    store: str = ""
    conversation: str = ""
    direction: Direction = Direction.INBOUND
    recipient_role: Role = Role.STORE
    sender_verified: bool = False
    subject: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    texts: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    size: int = 0
    addresses: int = 0
    truncated: bool = False
    defects: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def read(
        cls,
        data: bytes,
        *,
        alias_domains: Collection[str] = (),
        store: str = "",
        conversation: str = "",
        direction: Direction = Direction.INBOUND,
        recipient_role: Role = Role.STORE,
        sender_verified: bool = False,
    ) -> MessageView:
        """The view of raw message bytes (to test a moderator; the relay builds its own).

        Args:
            data: the raw message.
            alias_domains: addresses under these domains (and their
                subdomains) become ``[alias]``, others ``[address]``.
            store: see the attributes; the others too.
            conversation: see the attributes.
            direction: see the attributes.
            recipient_role: see the attributes.
            sender_verified: see the attributes.
        """
        parts = split_message(data)
        fields = parse_headers(parts.headers)
        domains = tuple(d.lower() for d in alias_domains)

        def is_alias(address: str) -> bool:
            domain = address.rpartition("@")[2].strip().lower()
            return any(domain == d or domain.endswith("." + d) for d in domains)

        return evolve(
            read_view(fields, parts.body, len(data), is_alias),
            store=store,
            conversation=conversation,
            direction=direction,
            recipient_role=recipient_role,
            sender_verified=sender_verified,
        )

    @property
    def text(self) -> str:
        """The subject and every text part, one per line (what a text rule scans)."""
        return "\n".join((self.subject, *self.texts))


#: An address spelled to dodge a filter: ``maria (at) x (dot) com``, ``maria
#: arroba x ponto com``, ``maria [at] x.com``. Bounded repetitions, separators
#: that are not label characters: linear in the text.
_SPELLED: Final = re.compile(
    r"(?<![\w.+-])[\w.+-]{1,64}"
    r"\s{0,3}(?:[(\[{<]\s{0,2}(?:at|arroba)\s{0,2}[)\]}>]|\barroba\b)\s{0,3}"
    r"[\w-]{1,63}(?:(?:\s{0,3}[(\[{<]\s{0,2}(?:dot|ponto)\s{0,2}[)\]}>]\s{0,3}"
    r"|\s{1,3}(?:dot|ponto)\s{1,3}|\.)[\w-]{1,63}){1,8}",
    re.IGNORECASE,
)


#: What every spelled address holds: a bracketed "at" or the word "arroba".
_SPELLED_AT: Final = re.compile(r"at\s{0,2}[)\]}>]|arroba", re.IGNORECASE)


class _Redactor:
    """Replaces addresses by placeholders and counts the ``[address]`` ones."""

    def __init__(self, is_alias: Callable[[str], bool]) -> None:
        self.is_alias = is_alias
        self.addresses = 0

    def _placeholder(self, address: str) -> str:
        if self.is_alias("".join(address.split()).replace("\uff20", "@").replace("\ufe6b", "@")):
            return ALIAS
        self.addresses += 1
        return ADDRESS

    def __call__(self, text: str) -> str:
        text, _ = redact_addresses(text, self._placeholder)
        if _SPELLED_AT.search(text) is None:  # a literal search: most text has no spelled "@"
            return text
        return _SPELLED.sub(self._spelled, text)

    def _spelled(self, _: re.Match[str]) -> str:
        self.addresses += 1
        return ADDRESS


def read_view(
    fields: Sequence[HeaderField], body: bytes, size: int, is_alias: Callable[[str], bool]
) -> MessageView:
    """The view of a message whose fields and body are parsed (the relay's parse, reused).

    Its recipient's attributes (store, conversation, direction, role, whether
    the sender is verified) are left at their defaults, to be set with
    :func:`attrs.evolve`.
    """
    content = read_content(fields, body)
    redact = _Redactor(is_alias)
    subject_field = get_first(fields, "subject")
    uncounted = _Redactor(is_alias)  # the subject is counted once, below
    headers = tuple((f.name, uncounted(f.value)) for f in fields if f.name.lower() in KEPT_FIELDS)
    subject = "" if subject_field is None else redact(subject_field.value)
    texts = tuple(redact(text) for text in content.texts)
    links = tuple(redact(link) for link in content.links)
    return MessageView(
        subject=subject,
        headers=headers,
        texts=texts,
        links=links,
        attachments=content.parts,
        size=size,
        addresses=redact.addresses,
        truncated=content.truncated,
        defects=content.defects,
    )


@runtime_checkable
class Moderator(Protocol):
    """A rule about messages: takes a view, returns a verdict; it must not keep the view.

    A plain function qualifies. Its name on the timeline is its ``name``
    attribute when it has one, else its qualified name (see
    :func:`moderator_name`).
    """

    def __call__(self, message: MessageView, /) -> Verdict:
        """Judge one message."""
        ...


def moderator_name(moderator: object) -> str:
    """The name a moderator is recorded and logged under (at most 64 characters)."""
    name = getattr(moderator, "name", None)
    if not isinstance(name, str) or not name.strip():
        name = getattr(moderator, "__qualname__", None) or type(moderator).__qualname__
        name = str(name).rpartition("<locals>.")[2]
    return " ".join(safe_text(str(name)).split())[:_MAX_NAME] or "moderator"


@frozen
class Finding:
    """A flag or a refusal, with the moderator that gave it."""

    moderator: str
    action: Action
    reason: str

    def to_dict(self) -> dict[str, str]:
        """As recorded on the timeline."""
        return {"moderator": self.moderator, "action": self.action.value, "reason": self.reason}


@frozen
class Judgement:
    """What the moderators said about one message: flags, then perhaps a refusal."""

    findings: tuple[Finding, ...] = ()

    @property
    def refusal(self) -> Finding | None:
        """The refusal, if a moderator refused (it is the last finding)."""
        last = self.findings[-1] if self.findings else None
        return last if last is not None and last.action is Action.REFUSE else None

    @property
    def flags(self) -> tuple[Finding, ...]:
        """The flags."""
        return tuple(f for f in self.findings if f.action is Action.FLAG)


def moderate(view: MessageView, moderators: Iterable[Moderator]) -> Judgement:
    """Ask each moderator in turn; stop at the first refusal.

    Raises:
        ModeratorFailed: a moderator raised, or returned something that is
            not a :class:`Verdict` (the message must not go unmoderated).
    """
    findings: list[Finding] = []
    for moderator in moderators:
        try:
            verdict = moderator(view)
        # a host's callable: whatever it raises is its failure, reported typed
        except Exception as exc:  # noqa: BLE001
            raise ModeratorFailed(moderator_name(moderator), type(exc).__name__) from None
        if not isinstance(verdict, Verdict):
            raise ModeratorFailed(moderator_name(moderator), f"returned {type(verdict).__name__}")
        if verdict.action is Action.ALLOW:
            continue
        findings.append(Finding(moderator_name(moderator), verdict.action, verdict.reason))
        if verdict.action is Action.REFUSE:
            break
    return Judgement(tuple(findings))


def ascii_reason(reason: str) -> str:
    """``reason`` in US-ASCII, for an SMTP reply (accents dropped, the rest ``?``)."""
    folded = unicodedata.normalize("NFKD", reason)
    return (
        "".join(c for c in folded if not unicodedata.combining(c))
        .encode("ascii", "replace")
        .decode("ascii")
    )
