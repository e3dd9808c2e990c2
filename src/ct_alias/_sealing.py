"""Record sealing and address-key rotation, behind the :class:`~ct_alias.crypto.Sealer` protocol.

The tracker hands storage alias records whose addresses a
:class:`~ct_alias.crypto.Sealer` has sealed, and opens them again on the way
out. Which sealer it is (:class:`~ct_alias.crypto.Cleartext` without address
keys, :class:`~ct_alias.crypto.AddressCipher` with them) is decided once, when
the tracker is built; nothing here asks which one it got.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from attrs import evolve, frozen

from .aliases import Alias
from .crypto import AddressCipher, Cleartext, Sealer, context_from_parts, is_sealed, record_context
from .errors import ConfigurationError, CorruptRecord, UnknownAddressKey
from .storage.base import Sealed, Storage
from .timeline import EntryKind, TimelineEntry

__all__ = ["RecordSealer", "Rotation"]

logger = logging.getLogger(__name__)


@frozen
class Rotation:
    """Progress of :meth:`Tracker.rotate_address_keys <ct_alias.Tracker.rotate_address_keys>`.

    Attributes:
        scanned: records read so far.
        resealed: records re-sealed with the newest key so far.
        last_key: the storage key of the last record read (resume after it).
        done: whether every record has been read.
        corrupt: the storage keys of records that do not open (altered, moved,
            or plaintext where plaintext is not allowed): left as they are,
            never re-sealed. The older keys cannot be dropped while one of
            them is sealed with one; look at them first.
    """

    scanned: int
    resealed: int
    last_key: str | None
    done: bool
    corrupt: tuple[str, ...] = ()


class RecordSealer:
    """Seals the addresses of alias records for storage, and opens them again.

    Args:
        sealer: what seals one address.
        keyed: whether ``sealer`` encrypts (then its keys can be rotated).
        allow_plaintext: open records whose addresses are not sealed too.
    """

    def __init__(self, sealer: Sealer, *, keyed: bool, allow_plaintext: bool) -> None:
        self._sealer = sealer
        self._keyed = keyed
        self._allow_plaintext = allow_plaintext

    @classmethod
    def from_keys(
        cls, address_keys: Iterable[str | bytes] | None, *, allow_plaintext: bool
    ) -> RecordSealer:
        """Encrypting with ``address_keys`` (oldest → newest), or not at all without them."""
        if address_keys is None:
            return cls(Cleartext(), keyed=False, allow_plaintext=allow_plaintext)
        return cls(AddressCipher(address_keys), keyed=True, allow_plaintext=allow_plaintext)

    def seal(self, alias: Alias) -> Alias:
        """The alias as storage keeps it: each address sealed, bound to the record's place."""
        if not self._keyed:  # the cleartext sealer keeps every text as it is
            return alias
        address = self._sealer.seal(alias.address, context=_context(alias, "alias"))
        real = self._sealer.seal(alias.real_address, context=_context(alias, "real", alias.address))
        if address is alias.address and real is alias.real_address:
            return alias
        return _with_addresses(alias, address, real)

    def present(
        self, record: Alias, address: str | None = None, *, migrating: bool = False
    ) -> Alias:
        """The record as callers see it: addresses opened, the alias in canonical form.

        Args:
            record: as storage returned it.
            address: the alias address when the caller already knows it (then
                the stored one is not opened).
            migrating: let plaintext records through (a migration to sealing).

        Raises:
            UnknownAddressKey: it was sealed with an address key that is gone.
            CorruptRecord: its sealed addresses do not authenticate.
        """
        if not self._keyed:
            # Cleartext opens nothing: it returns a value as it is and refuses a sealed one
            # (keys are missing), so only a sealed value is handed to it, without a context.
            if address is None:
                address = record.address
                if is_sealed(address):
                    self._sealer.open(address, context="")  # raises: keys are missing
            if is_sealed(record.real_address):
                self._sealer.open(record.real_address, context="")  # raises: keys are missing
            return record if address == record.address else evolve(record, address=address)
        plaintext = migrating or self._allow_plaintext
        if address is None:
            address = self._sealer.open(
                record.address,
                context=_context(record, "alias"),
                allow_plaintext=plaintext,
                legacy_context=record.key + ":alias",
                record=record.key + ":alias",
            )
        name = record.key + ":real"  # format 1's context, and how errors name the field
        real = self._sealer.open(
            record.real_address,
            context=_context(record, "real", address),
            allow_plaintext=plaintext,
            legacy_context=name,
            record=name,
        )
        if real == record.real_address and address == record.address:
            return record
        return _with_addresses(record, address, real)

    def seal_entry(self, entry: TimelineEntry) -> TimelineEntry:
        """A message entry as storage keeps it: its personal texts sealed (with address keys).

        Subjects, first words, message ids, attachment names, and each
        person's display name and address (a non-participant's, as on the
        wire) are sealed, bound to the entry's store, conversation and field.
        Participants are references already. Without address keys, and for
        events (whose data the host or the tracker wrote), nothing changes.
        """
        if not self._keyed or entry.kind is not EntryKind.MESSAGE:
            return entry

        def seal(value: object, field: str) -> object:
            if not isinstance(value, str) or not value:
                return value
            return self._sealer.seal(value, context=_entry_context(entry, field))

        data = _map_texts(entry.data, seal)
        data[SEALED_MARK] = True
        return evolve(entry, data=data)

    def open_entry(self, entry: TimelineEntry) -> TimelineEntry:
        """A stored entry as callers see it: its sealed texts opened.

        A text sealed with an address key that is no longer configured reads
        as ``None`` (timeline entries are not re-sealed by a rotation).

        Raises:
            CorruptRecord: a sealed text does not authenticate (altered or moved).
        """
        if entry.data.get(SEALED_MARK) is not True:
            return entry

        def open_(value: object, field: str) -> object:
            if not isinstance(value, str) or not is_sealed(value):
                return value
            try:
                return self._sealer.open(
                    value, context=_entry_context(entry, field), record=f"timeline:{field}"
                )
            except UnknownAddressKey:
                return None

        data = _map_texts(entry.data, open_)
        del data[SEALED_MARK]
        return evolve(entry, data=data)

    def rotate(
        self,
        storage: Storage,
        *,
        batch_size: int,
        after: str | None,
        progress: Callable[[Rotation], None] | None,
    ) -> Rotation:
        """Re-seal every stored record not sealed with the newest key in format 2, in batches.

        Plaintext records are sealed only when plaintext is allowed (a
        migration to sealing); otherwise, like a record that does not open,
        they are reported in :attr:`Rotation.corrupt` and left as they are: a
        plaintext value in a sealed database may have been planted.

        Raises:
            ConfigurationError: there are no address keys.
            UnknownAddressKey: a record was sealed with a key that is not configured.
        """
        if not self._keyed:
            raise ConfigurationError("rotate_address_keys() needs address_keys")
        sealer = self._sealer
        scanned = resealed = 0
        corrupt: list[str] = []
        cursor = after
        while batch := storage.scan(after=cursor, limit=batch_size):
            updates = []
            for record in batch:
                if sealer.needs_reseal(record.real_address) or sealer.needs_reseal(record.address):
                    try:
                        opened = self.present(record)
                    except CorruptRecord:
                        logger.warning("record %s does not open: not re-sealed", record.key)
                        corrupt.append(record.key)
                        continue
                    sealed = self.seal(opened)
                    updates.append(Sealed(record.key, sealed.address, sealed.real_address))
            resealed += storage.reseal(updates) if updates else 0
            scanned += len(batch)
            cursor = batch[-1].key
            if progress is not None:
                progress(Rotation(scanned, resealed, cursor, done=False, corrupt=tuple(corrupt)))
        return Rotation(scanned, resealed, cursor, done=True, corrupt=tuple(corrupt))


#: The personal text fields of a message entry, sealed with address keys.
_TEXTS = ("subject", "firstWords", "messageId")
#: Lists of personal texts.
_TEXT_LISTS = ("attachmentNames", "inReplyTo", "references")
#: Lists of people: each one's display name and (non-participant) address are sealed.
_PEOPLE = ("from", "to", "cc", "replyTo")
#: What a sealed message entry's data says about itself.
SEALED_MARK = "sealed"


def _map_texts(data: Mapping[str, Any], change: Callable[[object, str], object]) -> dict[str, Any]:
    """A copy of a message entry's data with ``change(value, field)`` applied to its texts."""
    out = dict(data)
    for field in _TEXTS:
        if field in out:
            out[field] = change(out[field], field)
    for field in _TEXT_LISTS:
        if isinstance(out.get(field), list):
            out[field] = [change(v, field) for v in out[field]]
    for field in _PEOPLE:
        if isinstance(out.get(field), list):
            out[field] = [_person(p, field, change) for p in out[field]]
    return out


def _person(person: object, field: str, change: Callable[[object, str], object]) -> object:
    if not isinstance(person, Mapping):
        return person
    return {
        **person,
        **{
            part: change(person[part], f"{field}.{part}")
            for part in ("name", "address")
            if part in person
        },
    }


def _with_addresses(record: Alias, address: str, real_address: str) -> Alias:
    """``evolve(record, address=..., real_address=...)`` without its per-call introspection."""
    return Alias(
        address,
        real_address,
        record.conversation,
        record.store,
        record.role,
        record.strategy,
        record.created_at,
        record.expires_at,
        record.status,
        record.ends_at,
        record.revoked_at,
        record.key,
        record.slot,
        record.owner,
    )


def _entry_context(entry: TimelineEntry, field: str) -> str:
    """The associated data of a sealed text of a timeline entry: its conversation and field."""
    return record_context(
        store=entry.store, conversation=entry.conversation, role="", key="timeline", field=field
    )


def _context(record: Alias, field: str, address: str = "") -> str:
    """The associated data of one sealed field: every column of the record that routes mail."""
    # positional, and the role's value read as stored: this runs for every record opened
    return context_from_parts(
        (record.store, record.conversation, record.role._value_, record.key, field, address)
    )
