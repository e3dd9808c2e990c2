"""Erasure: forgetting one person everywhere (GDPR art. 17, LGPD art. 18).

:class:`ErasureMethods` is a base of :class:`~ct_alias.Tracker`; its methods
are the tracker's (documented there). Every alias of a person is found by its
owner key (a keyed hash of the normalised real address, see
:meth:`BlindIndex.owner_key <ct_alias.blind_index.BlindIndex.owner_key>`),
across stores and conversations; each is tombstoned, and every timeline
entry of those conversations that names the person is redacted, in one
storage transaction (:meth:`ErasureStorage.erase
<ct_alias.storage.ErasureStorage.erase>`).

What "names the person" means: an entry that references one of their aliases
(an alias event's ``ref``, a message's sender or recipient), or any of whose
texts contains their address, its local part, or a display name they were
seen with (in those entries). Redaction replaces every personal text of such
an entry with :data:`REDACTED` and keeps its kind, name, time and order, so
an order's history keeps its shape.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from attrs import evolve, frozen

from . import _arguments as check
from ._sealing import SEALED_MARK, RecordSealer
from .addresses import RealAddress, normalize_address
from .aliases import Alias
from .blind_index import BlindIndex
from .clock import Clock
from .errors import (
    CorruptRecord,
    ExpiryReason,
    InvalidAddress,
    UnknownAddressKey,
    UnsupportedStorage,
)
from .storage.base import Erasure, ErasureStorage, Storage, Tombstone, stopped_working
from .timeline import AliasEvent, EntryKind, TimelineEntry
from .vocabulary import ModerationEvent, RuleEvent

__all__ = ["REDACTED", "ErasureMethods", "ErasureReceipt", "OwnerBackfill"]

logger = logging.getLogger("ct_alias.tracker")

#: What a redacted text reads.
REDACTED: Final = "[redacted]"
#: What a redacted entry's data says about itself.
REDACTED_MARK: Final = "redacted"
#: Local parts and display names shorter than this are not looked for in texts
#: (``"jo"`` would match half of every timeline); the whole address always is.
MIN_NEEDLE: Final = 3

# The personal texts of a message entry (the fields RecordSealer seals).
_TEXTS: Final = ("subject", "firstWords", "messageId")
_TEXT_LISTS: Final = ("attachmentNames", "inReplyTo", "references")
_PEOPLE: Final = ("from", "to", "cc", "replyTo")
# Free texts of the tracker's own events.
_EVENT_TEXTS: Final = ("reason",)
# Keys whose values are the library's own words or hashes, never a person's text.
_STRUCTURE: Final = frozenset(
    {"ref", "role", "strategy", "status", "code", "hard", "via", "source", "kind", "action"}
    | {"stage", "bounce", "by", "endsAt", "contentType", "date", "size", "isReport"}
    | {"slot", "state", "rule", "moderator"}
)


@frozen
class ErasureReceipt:
    """What :meth:`Tracker.forget <ct_alias.Tracker.forget>` did. Holds no personal data.

    Attributes:
        aliases: alias records forgotten (tombstoned, or a purged alias's
            owner link removed).
        entries: timeline entries redacted.
        stores: the stores those aliases belonged to.
        conversations: the conversations those aliases belonged to (each got
            a ``forgotten`` entry).
        unreadable: stored aliases without an owner whose address could not
            be read to find one (sealed with a missing key, or corrupt): they
            may belong to the person. ``0`` means the search was complete.
        at: when it happened.
    """

    aliases: int
    entries: int
    stores: int
    conversations: int
    unreadable: int
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        """The receipt as JSON-compatible data."""
        return {
            "aliases": self.aliases,
            "entries": self.entries,
            "stores": self.stores,
            "conversations": self.conversations,
            "unreadable": self.unreadable,
            "at": self.at.isoformat().replace("+00:00", "Z"),
        }


@frozen
class OwnerBackfill:
    """What :meth:`Tracker.backfill_owners <ct_alias.Tracker.backfill_owners>` did.

    Attributes:
        scanned: aliases without an owner that were read.
        filled: aliases given their owner.
        unreadable: the storage keys of those whose address could not be read.
    """

    scanned: int
    filled: int
    unreadable: tuple[str, ...] = ()


class ErasureMethods:
    """The erasure methods of :class:`~ct_alias.Tracker`, which provides the rest."""

    _storage: Storage
    _clock: Clock
    _records: RecordSealer
    _index: BlindIndex

    def _erasure_storage(self, operation: str) -> ErasureStorage:
        storage = self._storage
        if not isinstance(storage, ErasureStorage):
            raise UnsupportedStorage(operation, "ErasureStorage", storage)
        return storage

    def backfill_owners(self, *, batch_size: int = 500) -> OwnerBackfill:
        """Give stored aliases without an owner their owner key, in bounded batches.

        Aliases stored before owners were kept (SQL schema version 3 and
        earlier) have none; the owner is a keyed hash of the real address,
        so it takes this tracker's index key (and address keys, for sealed
        addresses) to compute. :meth:`forget` runs it first; run it once
        after upgrading to have it done ahead. Aliases whose address cannot be
        read are left without and reported (``unreadable``); purged aliases
        have no address left and keep none.

        Raises:
            UnsupportedStorage: the storage does not implement ``ErasureStorage``.
            StorageError: the storage failed.
        """
        batch_size = check.positive_int("batch_size", batch_size)
        storage = self._erasure_storage("backfill_owners")
        scanned = filled = 0
        unreadable: list[str] = []
        cursor: str | None = None
        while batch := storage.unowned(after=cursor, limit=batch_size):
            owners: dict[str, str] = {}
            for record in batch:
                try:
                    real = normalize_address(self._records.present(record).real_address)
                except (CorruptRecord, UnknownAddressKey, InvalidAddress):
                    logger.warning("alias %s: its address cannot be read; no owner", record.key)
                    unreadable.append(record.key)
                    continue
                owners[record.key] = self._index.owner_key(real.key)
            filled += storage.set_owners(owners) if owners else 0
            scanned += len(batch)
            cursor = batch[-1].key
        return OwnerBackfill(scanned, filled, tuple(unreadable))

    def forget(self, address: str) -> ErasureReceipt:
        """Forget a person: every alias of ``address``, and what timelines say of them.

        Every alias of the address (compared as :meth:`mask` compares it), in
        every store and conversation, purged ones included, becomes a
        tombstone without address or owner: mail to it is refused
        (``550 5.2.1``) and it is never issued again. In those conversations,
        every timeline entry that names the person (references one of the
        aliases, or holds the address, its local part or a display name the
        person was seen with) has its personal texts replaced by
        ``"[redacted]"``; its kind, name and time stay. Each conversation gets
        a ``forgotten`` event (counts only). It is all written in one
        transaction: a person is never half forgotten.

        Forgetting again is harmless: the receipt then says 0. Mail the
        person sends afterwards, and aliases masked for them afterwards, are
        new records, as for anyone.

        Args:
            address: the real address to forget.

        Returns:
            A receipt of what was done (counts, no address).

        Raises:
            InvalidAddress: ``address`` is not a valid e-mail address.
            UnsupportedStorage: the storage does not implement ``ErasureStorage``.
            StorageError: the storage failed; nothing was erased.
        """
        real = normalize_address(address)
        storage = self._erasure_storage("forget")
        backfill = self.backfill_owners()
        now = self._clock.now()
        records = storage.owned(self._index.owner_key(real.key))
        person = _Person.of(real, address, {r.key for r in records})
        aliases_in = Counter((r.store, r.conversation) for r in records)
        timelines = {place: self._opened_entries(*place) for place in sorted(aliases_in)}
        for timeline in timelines.values():
            person.learn_names(timeline)
        redactions = {place: person.redactions(timeline) for place, timeline in timelines.items()}
        changed = redacted = 0
        if records:
            changed, redacted = storage.erase(
                Erasure(
                    tombstones=tuple(_tombstone(r, now) for r in records),
                    redactions=tuple(e for found in redactions.values() for e in found),
                    entries=tuple(
                        _forgotten(place, now, aliases=count, entries=len(redactions[place]))
                        for place, count in aliases_in.items()
                    ),
                )
            )
        # Entries appended while this ran (a message being recorded): one more sweep.
        late = tuple(
            e for place in timelines for e in person.redactions(self._opened_entries(*place))
        )
        if late:
            redacted += storage.erase(Erasure(redactions=late))[1]
        receipt = ErasureReceipt(
            aliases=changed,
            entries=redacted,
            stores=len({store for store, _ in aliases_in}),
            conversations=len(aliases_in),
            unreadable=len(backfill.unreadable),
            at=now,
        )
        logger.info("forgot a person: %r", receipt)
        return receipt

    def _opened_entries(self, store: str, conversation: str) -> list[TimelineEntry]:
        """A conversation's entries, their sealed texts opened (marked where they do not open)."""
        opened = []
        for entry in self._storage.entries(conversation, store=store):
            try:
                opened.append(self._records.open_entry(entry))
            except CorruptRecord:
                opened.append(evolve(entry, data={**entry.data, _UNREADABLE: True}))
        return opened


def _forgotten(place: tuple[str, str], at: datetime, **counts: int) -> TimelineEntry:
    """The ``forgotten`` event of one conversation: counts, nothing personal."""
    store, conversation = place
    return TimelineEntry(
        conversation, EntryKind.EVENT, AliasEvent.FORGOTTEN.value, at, counts, store=store
    )


#: Marks, during an erasure, an entry whose sealed texts do not open: it is redacted.
_UNREADABLE: Final = "\x00unreadable"


def _tombstone(record: Alias | Tombstone, now: datetime) -> Tombstone:
    """The tombstone an erased record becomes (a purged one keeps its own)."""
    if isinstance(record, Tombstone):
        return evolve(record, owner=None)
    if record.usable_at(now):
        when, reason = now, ExpiryReason.REVOKED
    else:
        when, reason = stopped_working(record)
    return Tombstone(
        key=record.key,
        conversation=record.conversation,
        store=record.store,
        role=record.role,
        expired_at=when,
        reason=reason,
        purged_at=now,
    )


class _Person:
    """Who is being forgotten: their alias keys, and the texts that name them."""

    def __init__(self, refs: set[str], address: str, needles: set[str]) -> None:
        self._refs = refs
        self._address = address
        self._needles = needles

    @classmethod
    def of(cls, real: RealAddress, given: str, refs: set[str]) -> _Person:
        needles = {real.key, real.address.lower(), given.strip().lower()}
        local = real.local.strip('"').lower()
        if len(local) >= MIN_NEEDLE:
            needles.add(local)
        return cls(refs, real.key, needles)

    def learn_names(self, entries: Sequence[TimelineEntry]) -> None:
        """Add the display names the person appears with in ``entries``."""
        for entry in entries:
            for item in _people(entry.data):
                name = item.get("name")
                if not isinstance(name, str) or not self._is_them(item):
                    continue
                if len(name.strip()) >= MIN_NEEDLE:
                    self._needles.add(name.strip().lower())

    def _is_them(self, item: Mapping[str, Any]) -> bool:
        if self._is_ref(item.get("ref")):
            return True
        address = item.get("address")
        return isinstance(address, str) and address.strip().lower() in self._needles

    def _is_ref(self, value: object) -> bool:
        """Whether ``value`` is the storage key of one of the person's aliases."""
        return isinstance(value, str) and value in self._refs

    def names(self, entry: TimelineEntry) -> bool:
        """Whether ``entry`` names the person."""
        data = entry.data
        if data.get(_UNREADABLE) is True:
            return True
        if self._is_ref(data.get("ref")) and entry.name in _OWN_EVENTS:
            return True
        if any(self._is_them(item) for item in _people(data)):
            return True
        return any(self._mentions(text) for text in _strings(data))

    def _mentions(self, text: str) -> bool:
        folded = text.lower()
        return any(needle in folded for needle in self._needles)

    def redactions(self, entries: Iterable[TimelineEntry]) -> list[TimelineEntry]:
        """The entries that name the person, redacted (those that change)."""
        return [r for r in map(self.redact, entries) if r is not None]

    def redact(self, entry: TimelineEntry) -> TimelineEntry | None:
        """The entry with the person's texts redacted; ``None`` if that changes nothing."""
        if not self.names(entry):
            return None
        original = dict(entry.data)
        unreadable = original.pop(_UNREADABLE, None) is True
        data = dict(original)
        if entry.kind is EntryKind.MESSAGE:
            data = _redact_message(data)
        elif entry.name in _OWN_EVENTS:
            for field in _EVENT_TEXTS:
                if isinstance(data.get(field), str):
                    data[field] = REDACTED
        data = self._scrub(data)
        if data == original and not unreadable:
            return None
        data[REDACTED_MARK] = True
        return evolve(entry, data=data)

    def _scrub(self, value: Any) -> Any:
        """``value`` with every string that mentions the person replaced, however deep."""
        if isinstance(value, str):
            return REDACTED if self._mentions(value) else value
        if isinstance(value, Mapping):
            return {k: v if k in _STRUCTURE else self._scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._scrub(v) for v in value]
        return value


#: The events the tracker and the relay record themselves: their ``ref`` names an alias.
_OWN_EVENTS: Final = frozenset(
    {*AliasEvent._value2member_map_, *RuleEvent._value2member_map_}
    | {*ModerationEvent._value2member_map_}
)


def _people(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [
        item
        for field in _PEOPLE
        if isinstance(data.get(field), list)
        for item in data[field]
        if isinstance(item, Mapping)
    ]


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if key not in _STRUCTURE:
                yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _redact_message(data: dict[str, Any]) -> dict[str, Any]:
    """A message's data with every personal text replaced: subject, words, ids, names, addresses."""
    data.pop(SEALED_MARK, None)
    for field in _TEXTS:
        if isinstance(data.get(field), str) and data[field]:
            data[field] = REDACTED
    for field in _TEXT_LISTS:
        if isinstance(data.get(field), list):
            data[field] = [REDACTED for _ in data[field]]
    for field in _PEOPLE:
        if isinstance(data.get(field), list):
            data[field] = [_redact_person(item) for item in data[field]]
    if "contentHash" in data:
        data["contentHash"] = None
    return data


def _redact_person(item: object) -> object:
    if not isinstance(item, Mapping):
        return REDACTED
    out = dict(item)
    if isinstance(out.get("name"), str) and out["name"]:
        out["name"] = REDACTED
    if "address" in out:
        out["address"] = REDACTED
    return out
