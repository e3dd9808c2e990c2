"""The header a relayed message leaves with, for one recipient: who may speak as whom.

The rules (see the security model in the docs):

- The author (the one mailbox of the ``From:`` field) is shown under a
  participant's alias only when the authenticator vouches for its domain and
  it *is* that participant's real address; an authenticated outsider is given
  a contact alias (at most the policy's ``max_contacts`` per conversation).
  Everything else — no verdict, a failed one, several authors, an author under
  an alias domain — is *unverified*: shown under :data:`UNVERIFIED_LOCAL` at
  the alias domain, an address that accepts no mail, or refused, by policy.
- ``Reply-To`` keeps a participant's alias, and masks an outside address only
  when the same verdict vouches for its domain (one per message); ``To`` and
  ``Cc`` show participants' aliases. Every other address is left out, counted
  on the timeline, never named.
- Only the fields of :data:`~ct_alias.mail.KEPT_FIELDS` pass as they came
  (free-text ones only when they name no real address); ``Message-ID`` is
  replaced by a stand-in under the alias domain, and ids in ``In-Reply-To`` /
  ``References`` are mapped so that each side sees the ids it knows.

Scrubbing costs O(fields + participants): addresses are compared through
sets, never field by participant.
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from collections.abc import Sequence
from typing import Final

from attrs import frozen

from .aliases import Alias, Role
from .auth import Authentication
from .errors import InvalidAddress, InvalidArgument
from .mail import (
    PASSED_FIELDS,
    TEXT_FIELDS,
    HeaderField,
    address_candidates,
    format_address,
    get_all,
    message_ids,
    rewrite_headers,
    wire_key,
)
from .mail._addresses import parse_addresses
from .policy import UnauthenticatedMail
from .tracker import Tracker

__all__ = ["MAILER_DAEMON_LOCAL", "UNVERIFIED_LOCAL", "Outgoing", "Refusal"]

logger = logging.getLogger(__name__)

#: The local part unverified senders are shown under, at the alias domain; it accepts no mail.
UNVERIFIED_LOCAL: Final = "unverified-sender"
#: The local part delivery reports are shown from, at the alias domain; it accepts no mail.
MAILER_DAEMON_LOCAL: Final = "mailer-daemon"
_MAX_IDS: Final = 50


class Refusal(Exception):
    """The message cannot go to this recipient: answer with this code and reason."""

    def __init__(self, code: int, status: str, reason: str) -> None:
        super().__init__(code, status, reason)
        self.code = code
        self.status = status
        self.reason = reason


@frozen
class Author:
    """The one mailbox of a message's ``From:`` field."""

    name: str
    address: str

    @property
    def domain(self) -> str:
        """The address's domain, lower case, IDNA."""
        return wire_key(self.address).rpartition("@")[2]


def author_of(fields: Sequence[HeaderField]) -> Author | None:
    """The author of a message: the single mailbox of its single ``From:`` field, or None.

    Several ``From`` fields or mailboxes are ambiguous (DMARC refuses to judge
    them), so they name no author.

    Raises:
        MalformedMessage: the field is nested too deeply to read.
    """
    found = get_all(fields, "from")
    if len(found) != 1:
        return None
    pairs, unusable = parse_addresses(found[0].unfolded)
    if len(pairs) != 1 or unusable:
        return None
    name, address = pairs[0]
    return Author("" if "@" in name else name, address)


class Outgoing:
    """The rewrite of one message for one recipient alias.

    Args:
        tracker: whose aliases are used (contact aliases are issued through it).
        recipient: the alias the message was sent to.
        fields: the message's header fields.
        author: the message's author (see :func:`author_of`).
        authentication: the authenticator's verdict on the author.
        bounce: whether the message has a null reverse-path (an auto-reply:
            delivery reports never get here, the relay consumes them). Its
            author is never made a contact.
        participants: the conversation's aliases, when the caller read them
            for this message (fresh: the relay reads them at ``DATA``); default
            read here.
    """

    def __init__(
        self,
        tracker: Tracker,
        recipient: Alias,
        fields: Sequence[HeaderField],
        *,
        author: Author | None,
        authentication: Authentication,
        bounce: bool,
        participants: Sequence[Alias] | None = None,
    ) -> None:
        self._tracker = tracker
        self._recipient = recipient
        self._fields = fields
        self._author = author
        self._auth = authentication
        self._bounce = bounce
        self._policy = tracker.policy_for(recipient.store)
        self._now = tracker.clock.now()
        if participants is None:  # the relay passes the read it checked the recipient in
            participants = tracker.aliases(recipient.conversation, store=recipient.store)
        self._participants = participants
        # usable aliases win over ended ones of the same address
        ordered = sorted(participants, key=lambda a: a.usable_at(self._now))
        self._by_real = {wire_key(a.real_address): a for a in ordered}
        self._by_alias = {a.address: a for a in participants}
        self._contacts = {wire_key(a.real_address) for a in participants if a.role is Role.CONTACT}
        self._own = wire_key(recipient.real_address)
        self.dropped: Counter[str] = Counter()
        self.sender: Alias | None = None
        #: The author's address when it is not verified (what a block is also checked against).
        self.claimed: str | None = None
        self.minted = 0

    # -- who is speaking -------------------------------------------------------

    @property
    def _domain(self) -> str:
        return self._policy.domain

    def _vouched(self, address: str) -> bool:
        return self._auth.vouches_for(wire_key(address).rpartition("@")[2])

    def _issue(self, address: str, role: Role) -> Alias:
        """A usable alias of ``address`` in the recipient's conversation (issued if needed)."""
        return self._tracker.mask(
            address,
            conversation=self._recipient.conversation,
            store=self._recipient.store,
            role=role,
        )

    def _alias_of(self, address: str) -> Alias:
        """The alias an authenticated ``address`` is shown under: a participant's, or a contact's.

        Raises:
            Refusal: the conversation has as many contacts as its policy allows.
            InvalidAddress: the address cannot be masked.
        """
        key = wire_key(address)
        known = self._by_real.get(key)
        if known is not None:
            alias = known if known.usable_at(self._now) else self._issue(address, known.role)
        else:
            if key not in self._contacts and len(self._contacts) >= self._policy.max_contacts:
                raise Refusal(550, "5.7.1", "this conversation has too many outside senders")
            alias = self._issue(address, Role.CONTACT)
            self._contacts.add(key)
            self.minted += 1
        self._by_real[key] = alias
        self._by_alias[alias.address] = alias
        return alias

    def _from(self) -> str:
        """The new ``From:`` value; sets :attr:`sender`.

        Raises:
            Refusal: unverified mail and a policy that refuses it; too many
                contacts; or mail to a contact's alias that does not come from
                an authenticated participant (customer, store, follow-up).
        """
        author = self._author
        verified = (
            author is not None
            and not self._tracker.owns(author.address)
            and self._vouched(author.address)
        )
        known = self._by_real.get(wire_key(author.address)) if author is not None else None
        if self._recipient.role is Role.CONTACT and (
            not verified or known is None or known.role is Role.CONTACT
        ):
            # outsider to outsider would make the relay an open relay: a contact's
            # alias takes mail from the order's own (authenticated) participants only
            raise Refusal(
                550, "5.7.1", "this address takes mail only from the order's participants"
            )
        if (
            author is not None and verified and not (self._bounce and known is None)
        ):  # a null sender (an auto-reply) is shown as a participant, never made a contact
            try:
                self.sender = self._alias_of(author.address)
            except InvalidAddress:
                logger.info("an authenticated author's address cannot be masked")
            else:
                return format_address(author.name, self.sender.address)
        self.claimed = author.address if author is not None else None
        if self._policy.unauthenticated is UnauthenticatedMail.REFUSE:
            raise Refusal(550, "5.7.1", "the sender's domain did not authenticate this message")
        name = author.name if author is not None else ""
        shown = f"{name} (unverified)" if name else "Unverified sender"
        return format_address(shown, f"{UNVERIFIED_LOCAL}@{self._domain}")

    @property
    def envelope_sender(self) -> str:
        """The envelope sender to deliver with: the recipient alias's bounce address.

        Delivery reports then come home to the recipient's conversation (see
        :mod:`ct_alias.bounces`). A message with a null sender (an
        auto-reply) keeps it, so that nothing ever answers it.
        """
        if self._bounce:
            return ""
        bounce = self._tracker.bounce_address(self._recipient)
        if bounce is not None:
            return bounce
        return (
            self.sender.address if self.sender is not None else f"{UNVERIFIED_LOCAL}@{self._domain}"
        )

    # -- address fields --------------------------------------------------------

    def _mailboxes(self, name: str) -> list[tuple[str, str]]:
        found = get_all(self._fields, name)
        if not found:
            return []
        if len(found) > 1:
            self.dropped[name] += len(found) - 1
        pairs, unusable = parse_addresses(found[0].unfolded)
        self.dropped[name] += unusable
        return pairs

    def _reply_to(self) -> str | None:
        """Participants' aliases, and one vouched outside address masked; the rest left out."""
        kept: list[tuple[str, str]] = []
        may_issue = True  # one new contact from Reply-To per message
        for name, address in self._mailboxes("reply-to"):
            alias = self._by_alias.get(address.lower())
            if alias is None and self.sender is not None and self._vouched(address):
                known = wire_key(address) in self._by_real
                if known or may_issue:
                    try:
                        alias = self._alias_of(address)
                    except (InvalidAddress, Refusal):
                        alias = None
                    may_issue = may_issue and known
            if alias is None:
                self.dropped["reply-to"] += 1
            else:
                kept.append((name, alias.address))
        return self._written("reply-to", kept)

    def _recipients(self, name: str) -> str | None:
        """``To``/``Cc``: aliases kept, participants' real addresses masked, the rest left out."""
        kept: list[tuple[str, str]] = []
        for shown, address in self._mailboxes(name):
            key = wire_key(address)
            if self._tracker.owns(address):
                kept.append((shown, address.lower()))
            elif key == self._own:
                kept.append((shown, address))
            elif (alias := self._by_real.get(key)) is not None:
                kept.append((shown, alias.address))
            else:
                self.dropped[name] += 1
        return self._written(name, kept)

    def _written(self, name: str, mailboxes: list[tuple[str, str]]) -> str | None:
        values = []
        for shown, address in mailboxes:
            try:
                values.append(format_address("" if "@" in shown else shown, address))
            except InvalidArgument:
                self.dropped[name] += 1
        return ", ".join(values) or None

    # -- message ids -----------------------------------------------------------

    def _stand_in(self, message_id: str) -> str:
        key = self._tracker.index.message_key(self._recipient.conversation, message_id)
        return f"{key}@{self._domain}"

    def _seen(self) -> dict[str, tuple[str, str | None]]:
        """Stand-in → (original id, its author's alias key), for the conversation's messages."""
        seen: dict[str, tuple[str, str | None]] = {}
        recipient = self._recipient
        for entry in self._tracker.timeline(recipient.conversation, store=recipient.store).messages:
            original = entry.data.get("messageId")
            if not isinstance(original, str) or not original:
                continue
            authors = entry.data.get("from") or [{}]
            ref = authors[0].get("ref") if isinstance(authors[0], dict) else None
            seen[self._stand_in(original)] = (original, ref if isinstance(ref, str) else None)
            seen.setdefault(original, (original, ref if isinstance(ref, str) else None))
        return seen

    def _thread(self, name: str, seen: dict[str, tuple[str, str | None]]) -> str | None:
        """Ids as the recipient knows them: its own messages' originals, stand-ins for the rest."""
        found = get_all(self._fields, name)
        if not found:
            return None
        out = []
        for ident in message_ids(found[0].unfolded)[:_MAX_IDS]:
            original, author = seen.get(ident.lower(), seen.get(ident, (ident, None)))
            if author is not None and author == self._recipient.key:
                out.append(f"<{original}>")
            elif self._tracker.owns(original):
                out.append(f"<{original.lower()}>")
            else:
                out.append(f"<{self._stand_in(original)}>")
        return " ".join(out) or None

    # -- the header ------------------------------------------------------------

    def _names_an_address(self, field: HeaderField) -> bool:
        found = address_candidates(field.value) | address_candidates(field.unfolded)
        return any(a != self._own and not self._tracker.owns(a) for a in found)

    def header(self, *, trace: tuple[str, str]) -> bytes:
        """The header block to deliver (the body is the caller's, untouched).

        Raises:
            Refusal: see :meth:`_from`.
        """
        replace: dict[str, str | None] = {"From": self._from()}
        replace["Reply-To"] = self._reply_to()
        replace["To"] = self._recipients("to")
        replace["Cc"] = self._recipients("cc")
        original = get_all(self._fields, "message-id")
        ids = message_ids(original[0].unfolded, single=True) if original else ()
        replace["Message-ID"] = (
            f"<{self._stand_in(ids[0])}>" if ids else f"<{secrets.token_hex(16)}@{self._domain}>"
        )
        if get_all(self._fields, "in-reply-to") or get_all(self._fields, "references"):
            seen = self._seen()
            replace["In-Reply-To"] = self._thread("in-reply-to", seen)
            replace["References"] = self._thread("references", seen)
        kept = []
        rewritten = {name.lower() for name in replace}
        for field in self._fields:
            name = field.name.lower()
            passes = name in rewritten or name in PASSED_FIELDS
            if passes or (name in TEXT_FIELDS and not self._names_an_address(field)):
                kept.append(field.raw)
            else:
                self.dropped["header"] += 1
        present = {f.name.lower() for f in self._fields}
        add = [trace] + [
            (name, value)
            for name, value in replace.items()
            if value is not None and name.lower() not in present
        ]
        return rewrite_headers(b"".join(kept), replace=replace, add=add)

    def notes(self) -> dict[str, object]:
        """What the timeline keeps of the rewrite: counts of what was left out, never addresses."""
        notes: dict[str, object] = {"dropped": dict(sorted(self.dropped.items()))}
        if self.sender is None:
            notes["sender"] = "unverified"
        return notes
