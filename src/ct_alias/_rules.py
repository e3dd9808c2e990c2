"""The tracker's conversation-rules half: what the host sets, and what the relay asks.

:class:`RulesMethods` is a base of :class:`~ct_alias.Tracker`; its methods
are the tracker's. The rules' facts are folded from the timeline
(:class:`~ct_alias.rules.RuleFold`); a tracker keeps the fold of each
conversation it was asked about (at most :data:`MAX_FOLDS`, least recently
used first out) and reads only the entries since its newest one (less
:data:`~ct_alias.rules.OVERLAP`, a quarter of an hour, so that an order event recorded a
little back-dated is seen), so a relayed message costs one small read, and
nothing at all for a store whose policy sets no rule. An entry back-dated
further is seen at most :data:`FOLD_REREAD` (six hours) later: the fold then
counts the timeline's entries (when the storage can,
:class:`~ct_alias.storage.EntryCount`) and reads it again whole only when the
count is not the number of entries it folded.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence, Set
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from . import _arguments as check
from ._sealing import RecordSealer
from ._unsubscribe import looks_like_unsubscribe, make_unsubscribe_token, read_unsubscribe_token
from .aliases import Alias, Role
from .blind_index import BlindIndex
from .clock import Clock
from .codec import AliasCodec
from .errors import (
    ConfigurationError,
    ExpiredAlias,
    ExpiryReason,
    ForgedAlias,
    InvalidArgument,
    MalformedAlias,
    UnknownAlias,
)
from .policy import Policy
from .rules import ConversationRules, RuleFold, RuleRefusal, decide
from .storage.base import EntryCount, RuleScan, Storage, Tombstone
from .timeline import EntryKind, TimelineEntry
from .vocabulary import DEFAULT_STORE, ConversationState, RuleEvent

__all__ = ["FOLD_REREAD", "MAX_FOLDS", "Folds", "RulesMethods"]

#: How many conversations' folds a tracker keeps.
MAX_FOLDS: Final = 10_000
#: A fold older than this is read again whole (to see back-dated entries).
FOLD_REREAD: Final = timedelta(hours=6)

_INBOUND_ROLES: Final = frozenset({Role.STORE, Role.CONTACT})
#: A page of a timeline (``entries`` or ``rule_entries``).
_Reader: TypeAlias = Callable[..., list[TimelineEntry]]


class Folds:
    """A tracker's folds, by (store, conversation), least recently used first."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.folds: OrderedDict[tuple[str, str], RuleFold] = OrderedDict()
        self._reader: tuple[Storage, _Reader] | None = None

    def reader(self, storage: Storage) -> _Reader:
        """How the folds read ``storage``: :class:`RuleScan`'s cheaper read when it has one."""
        known = self._reader
        if known is None or known[0] is not storage:
            read = storage.rule_entries if isinstance(storage, RuleScan) else storage.entries
            known = self._reader = (storage, read)
        return known[1]


class RulesMethods:
    """The conversation-rules methods of :class:`~ct_alias.Tracker`, which provides the rest."""

    _storage: Storage
    _clock: Clock
    _records: RecordSealer
    _codec: AliasCodec
    _index: BlindIndex
    _folds: Folds

    if TYPE_CHECKING:  # provided by Tracker

        @property
        def domains(self) -> frozenset[str]: ...

        def policy_for(self, store: str) -> Policy: ...

        def lookup(self, alias: str) -> Alias | Tombstone: ...

    # -- what the host sets ----------------------------------------------------

    def set_state(
        self,
        conversation: str,
        state: ConversationState | str,
        *,
        store: str = DEFAULT_STORE,
        reason: str | None = None,
    ) -> TimelineEntry:
        """Set a conversation's state (recorded as a ``state-changed`` entry).

        ``open`` relays as usual; ``on_hold`` (a dispute, a mediation) relays
        only mail to and from the policy's ``support_address``; ``closed``
        relays nothing. Refused mail is answered ``550 5.7.1`` and recorded.

        Args:
            conversation: the conversation.
            state: a :class:`~ct_alias.vocabulary.ConversationState` or its value.
            store: whose conversation.
            reason: why (recorded; never sent to anyone).

        Raises:
            ConfigurationError: the store's policy has ``conversation_rules`` off.
            InvalidArgument: a bad state, reason, conversation or store.
        """
        conversation, store = self._rules_on(conversation, store)
        if not isinstance(state, str) or state not in ConversationState._value2member_map_:
            choices = ", ".join(s.value for s in ConversationState)
            raise InvalidArgument("state", f"must be one of {choices}, not {state!r}")
        data: dict[str, Any] = {"state": ConversationState(state).value}
        if reason is not None:
            data["reason"] = check.text("reason", reason, check.MAX_REASON)
        return self._record_rule(conversation, store, RuleEvent.STATE_CHANGED, data)

    def block(
        self,
        conversation: str,
        contact: Alias | str | TimelineEntry,
        *,
        store: str = DEFAULT_STORE,
        reason: str | None = None,
    ) -> TimelineEntry:
        """Refuse one sender in one conversation (``550 5.7.1``); recorded.

        The sender is the participant behind ``contact`` as the relay's
        sender authentication knows it: its mail to anyone in this
        conversation is refused, whatever alias it is shown under later (a
        fresh one after expiry included); other conversations are not
        affected. Unverified mail that claims the sender's address is
        refused too (a claim can only add refusals).

        Args:
            conversation: the conversation.
            contact: the participant's :class:`~ct_alias.Alias`, its alias
                address, or a message entry of the timeline (what the
                customer clicked): its authenticated sender.
            store: whose conversation.
            reason: why (recorded).

        Raises:
            ConfigurationError: the store's policy has ``conversation_rules`` off.
            InvalidArgument: ``contact`` is not a participant of this
                conversation, or the message's sender was not verified.
        """
        return self._blocking(conversation, contact, store, reason, RuleEvent.SENDER_BLOCKED)

    def unblock(
        self,
        conversation: str,
        contact: Alias | str | TimelineEntry,
        *,
        store: str = DEFAULT_STORE,
        reason: str | None = None,
    ) -> TimelineEntry:
        """Undo :meth:`block` (recorded); takes the same arguments."""
        return self._blocking(conversation, contact, store, reason, RuleEvent.SENDER_UNBLOCKED)

    def opt_out(self, conversation: str, *, store: str = DEFAULT_STORE) -> TimelineEntry:
        """Opt the customer out of the conversation's non-critical messages (recorded once).

        Afterwards ``notify(..., critical=False)`` records the message as
        suppressed and returns ``None``; the order steps' messages (critical)
        still go.
        """
        conversation = check.conversation(conversation)
        store = check.store(store)
        return self._opt_out(conversation, store, "host")

    def unsubscribe(self, token: str) -> TimelineEntry:
        """Opt out the customer a ``List-Unsubscribe`` token names (the host's https endpoint).

        The host's endpoint (the policy's ``unsubscribe_url``) passes the
        ``{token}`` it was called with (recorded ``via: link``); the relay
        passes the mailto address mail was sent to (``via: mail``).

        Raises:
            MalformedAlias: not an unsubscribe token.
            ForgedAlias: its signature does not verify.
            ExpiredAlias: it is older than :data:`~ct_alias._unsubscribe.UNSUBSCRIBE_TTL`.
            UnknownAlias: the customer alias it names is no longer stored.
        """
        alias = self.unsubscribed(token)
        return self._opt_out(alias.conversation, alias.store, "mail" if "@" in token else "link")

    def unsubscribed(self, token_or_address: str) -> Alias:
        """The customer alias an unsubscribe token (or its mailto address) names; checks it.

        Raises:
            MalformedAlias, ForgedAlias, ExpiredAlias, UnknownAlias: see :meth:`unsubscribe`.
        """
        if not isinstance(token_or_address, str):
            raise MalformedAlias(repr(token_or_address), "not an unsubscribe token")
        token, _, domain = token_or_address.lower().partition("@")
        domains = [domain] if domain else sorted(self.domains)
        if not looks_like_unsubscribe(token) or (domain and domain not in self.domains):
            raise MalformedAlias(token_or_address, "not an unsubscribe token")
        for candidate in domains:
            try:
                key, expires_at = read_unsubscribe_token(self._codec, token, candidate)
            except ForgedAlias:
                continue
            break
        else:
            raise ForgedAlias(token_or_address)
        if self._clock.now() >= expires_at:
            raise ExpiredAlias(token_or_address, expires_at, ExpiryReason.TTL)
        record = self._storage.get(key)
        if record is None or isinstance(record, Tombstone) or record.role is not Role.CUSTOMER:
            raise UnknownAlias(token_or_address)
        return self._records.present(record)

    # -- what the rules say ----------------------------------------------------

    def conversation_rules(
        self, conversation: str, *, store: str = DEFAULT_STORE
    ) -> ConversationRules:
        """A conversation's state, blocked senders and opt-out, as its timeline says now."""
        conversation = check.conversation(conversation)
        store = check.store(store)
        with self._fold(store, conversation) as fold:
            return fold.snapshot()

    def check_rules(
        self,
        recipient: Alias,
        sender: Alias | None,
        *,
        replied_ids: Sequence[str] = (),
        claimed: str | None = None,
    ) -> RuleRefusal | None:
        """Whether the conversation rules refuse a message to ``recipient``; None: it may go.

        The relay asks this before it relays (a host with its own transport
        may ask too). Nothing is read when the store's policy sets no rule.

        Args:
            recipient: the alias the message is sent to.
            sender: the alias the authenticated sender is shown under
                (``None``: not verified).
            replied_ids: the message ids its ``In-Reply-To`` and
                ``References`` name (a reply is not refused by a window).
            claimed: the author's address when the sender is not verified: a
                blocked sender's mail is refused whether or not it
                authenticates (a claim can only make a refusal more likely,
                never let a blocked sender through).
        """
        policy = self.policy_for(recipient.store)
        if not policy.relay_rules:
            return None
        with self._fold(recipient.store, recipient.conversation) as fold:
            return decide(
                fold,
                policy,
                to_customer=recipient.role not in _INBOUND_ROLES,
                sender_slot=self._blocked_slot(recipient, sender, claimed, fold.blocked),
                support_involved=_is_support(policy, recipient, sender),
                replied_ids=replied_ids,
                now=self._clock.now(),
            )

    def opted_out(self, conversation: str, *, store: str = DEFAULT_STORE) -> bool:
        """Whether the customer of the conversation opted out of non-critical messages."""
        return self.conversation_rules(conversation, store=store).opted_out

    def unsubscribe_address(self, customer: Alias) -> str | None:
        """The mailto address that opts ``customer`` out (``None`` if it would not fit)."""
        domain = self.policy_for(customer.store).domain
        token = make_unsubscribe_token(self._codec, customer.key, domain, self._clock.now())
        return None if token is None else f"{token}@{domain}"

    # -- helpers ---------------------------------------------------------------

    def _rules_on(self, conversation: str, store: str) -> tuple[str, str]:
        conversation = check.conversation(conversation)
        store = check.store(store)
        if not self.policy_for(store).conversation_rules:
            raise ConfigurationError(
                f"store {store!r}'s policy has conversation_rules off: turn it on "
                "(Policy(conversation_rules=True), or ct-alias policy set --conversation-rules on) "
                "for the relay to enforce states and blocked senders"
            )
        return conversation, store

    def _blocking(
        self,
        conversation: str,
        contact: Alias | str | TimelineEntry,
        store: str,
        reason: str | None,
        event: RuleEvent,
    ) -> TimelineEntry:
        conversation, store = self._rules_on(conversation, store)
        alias = self._participant(conversation, store, contact)
        data: dict[str, Any] = {
            "ref": alias.key,
            "role": alias.role.value,
            "slot": self._sender_slot(alias),
        }
        if reason is not None:
            data["reason"] = check.text("reason", reason, check.MAX_REASON)
        return self._record_rule(conversation, store, event, data)

    def _participant(
        self, conversation: str, store: str, contact: Alias | str | TimelineEntry
    ) -> Alias:
        """The alias ``contact`` names, checked to be of this conversation."""
        if isinstance(contact, TimelineEntry):
            if contact.kind is not EntryKind.MESSAGE:
                raise InvalidArgument("contact", "a timeline entry must be a message")
            authors = contact.data.get("from") or [{}]
            ref = authors[0].get("ref") if isinstance(authors[0], dict) else None
            if not isinstance(ref, str):
                raise InvalidArgument(
                    "contact", "the message's sender was not verified: there is nobody to block"
                )
            found = [a for a in self._storage.aliases(conversation, store=store) if a.key == ref]
            if not found:
                raise InvalidArgument("contact", "the message's sender is no longer stored")
            return self._records.present(found[0])
        if isinstance(contact, Alias):
            record: Alias | Tombstone = contact
        elif isinstance(contact, str):
            try:
                record = self.lookup(contact)
            except (MalformedAlias, ForgedAlias, UnknownAlias):
                raise InvalidArgument("contact", "not one of this tracker's aliases") from None
        else:
            raise InvalidArgument("contact", "expected an Alias, an alias address or a message")
        if (
            isinstance(record, Tombstone)
            or record.conversation != conversation
            or record.store != store
        ):
            raise InvalidArgument("contact", "not a participant of this conversation")
        return record

    def _blocked_slot(
        self, recipient: Alias, sender: Alias | None, claimed: str | None, blocked: Set[str]
    ) -> str | None:
        """The sender's slot to check against ``blocked`` (computed only when someone is).

        A verified sender is known by its alias; an unverified one by the
        address it claims, under any role a blocked participant may have had.
        """
        if not blocked:
            return None
        if sender is not None:
            return self._sender_slot(sender)
        if claimed is None:
            return None
        from .mail._addresses import wire_key  # noqa: PLC0415 - mail parsing stays lazy

        key = wire_key(claimed)
        for role in Role:
            slot = self._index.slot_key(recipient.store, recipient.conversation, role.value, key)
            if slot in blocked:
                return slot
        return None

    def _sender_slot(self, alias: Alias) -> str:
        """The same key for every alias a sender has in a conversation under one role."""
        from .mail._addresses import wire_key  # noqa: PLC0415 - mail parsing stays lazy

        return self._index.slot_key(
            alias.store, alias.conversation, alias.role.value, wire_key(alias.real_address)
        )

    def _opt_out(self, conversation: str, store: str, via: str) -> TimelineEntry:
        entry = TimelineEntry(
            conversation,
            EntryKind.EVENT,
            RuleEvent.OPTED_OUT.value,
            self._clock.now(),
            {"via": via},
            dedup_key="rule:opted-out",
            store=store,
        )
        stored, _ = self._storage.append(entry)
        return stored

    def _record_rule(
        self, conversation: str, store: str, event: RuleEvent, data: dict[str, Any]
    ) -> TimelineEntry:
        entry = TimelineEntry(
            conversation, EntryKind.EVENT, event.value, self._clock.now(), data, store=store
        )
        stored, _ = self._storage.append(entry)
        return stored

    @contextlib.contextmanager
    def _fold(self, store: str, conversation: str) -> Iterator[RuleFold]:
        """The conversation's fold, up to date with what was recorded since, held locked.

        Every :data:`FOLD_REREAD` the fold makes sure no entry recorded with an
        older time slipped past its reads: it counts the timeline's entries
        (:class:`~ct_alias.storage.EntryCount`) and folds the whole timeline
        again only when the count is not the number it folded, or always when
        the storage cannot count.
        """
        folds = self._folds
        key = (store, conversation)
        now = self._clock.now()
        with folds.lock:
            cached = folds.folds.get(key)
            if cached is None:
                cached = RuleFold(lambda mid: self._index.message_key(conversation, mid))
                folds.folds[key] = cached
            folds.folds.move_to_end(key)
            while len(folds.folds) > MAX_FOLDS:
                folds.folds.popitem(last=False)
        storage = self._storage
        with cached.lock:
            due = cached.read_at is not None and not (
                timedelta(0) <= now - cached.read_at < FOLD_REREAD
            )
            # a protocol isinstance inspects the storage: only when due, not every message
            counter = storage if due and isinstance(storage, EntryCount) else None
            if due and counter is None:
                cached.clear()
            self._read_on(cached, store, conversation)
            if (
                counter is not None
                and counter.entry_count(conversation, store=store) != cached.count
            ):
                cached.clear()
                self._read_on(cached, store, conversation)
            if due or cached.read_at is None:
                cached.read_at = now
            yield cached

    def _read_on(self, fold: RuleFold, store: str, conversation: str) -> None:
        """Fold in what the timeline holds after the fold's position (less the overlap)."""
        read = self._folds.reader(self._storage)
        after = fold.read_from()
        while True:
            page = read(conversation, store=store, after=after, limit=_PAGE)
            fold.add(
                self._records.open_entry(e) if e.kind is EntryKind.MESSAGE else e
                for e in page
                if e.seq not in fold.seen
            )
            if len(page) < _PAGE:
                break
            after = (page[-1].at, page[-1].seq or 0)


_PAGE: Final = 500


def _is_support(policy: Policy, recipient: Alias, sender: Alias | None) -> bool:
    support = policy.support_address
    if support is None:
        return False
    from .mail._addresses import wire_key  # noqa: PLC0415 - mail parsing stays lazy

    want = wire_key(support)
    if wire_key(recipient.real_address) == want:
        return True
    return sender is not None and wire_key(sender.real_address) == want
