"""A record's life after it is issued: revoke, end, reactivate, purge, re-seal.

:class:`LifecycleMethods` is a base of :class:`~ct_alias.Tracker`; its
methods are the tracker's (documented there). The changes themselves are
worked out by the pure functions of :mod:`ct_alias._lifecycle`; these methods
check their arguments, read what they change and write the changes with their
timeline entries in one storage transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from . import _arguments as check
from ._lifecycle import Changes, ending, reactivation, revocation
from ._policies import Verified
from ._sealing import RecordSealer, Rotation
from .aliases import Alias
from .clock import Clock
from .policy import Policy
from .storage.base import Storage
from .timeline import TimelineEntry
from .vocabulary import DEFAULT_STORE

__all__ = ["LifecycleMethods"]


class LifecycleMethods:
    """The lifecycle methods of :class:`~ct_alias.Tracker`, which provides the rest."""

    _storage: Storage
    _clock: Clock
    _records: RecordSealer

    if TYPE_CHECKING:  # provided by Tracker

        def policy_for(self, store: str) -> Policy: ...

        def verify(self, alias: str) -> Verified: ...

        def _stored_alias(self, canonical: str) -> Alias: ...

    def revoke(self, alias: Alias | str, *, reason: str | None = None) -> Alias:
        """Kill one alias at once: from now on ``unmask`` raises :class:`RevokedAlias`.

        Revoking a revoked alias changes nothing. A later :meth:`mask` of the
        same participant issues a fresh alias.

        Args:
            alias: the :class:`Alias`, or its address.
            reason: why (recorded on the timeline).

        Raises:
            MalformedAlias, ForgedAlias: ``alias`` is not a valid alias address.
            UnknownAlias: it is not in storage.
            ExpiredAlias: it was already purged.
        """
        if reason is not None:
            reason = check.text("reason", reason, check.MAX_REASON)
        canonical = alias.address if isinstance(alias, Alias) else self.verify(alias).address
        record = self._stored_alias(canonical)
        changes = revocation(record, now=self._clock.now(), reason=reason)
        if not changes.changes:
            return record
        changed, _ = self._apply(changes)
        return self._records.present(changed[0], canonical) if changed else record

    def end(
        self, conversation: str, *, store: str = DEFAULT_STORE, grace: timedelta | None = None
    ) -> list[Alias]:
        """End every working alias of ``conversation`` now (as an ending event would).

        Args:
            conversation: the conversation.
            store: whose conversation (conversations are per store).
            grace: how long they keep working; default: each alias's store policy's grace.

        Returns:
            The aliases that were ended.
        """
        conversation = check.conversation(conversation)
        store = check.store(store)
        if grace is not None:
            grace = check.duration("grace", grace)
        now = self._clock.now()
        changed, _ = self._apply(self._ending(store, conversation, now, None, grace))
        return [self._records.present(a) for a in changed]

    def _ending(
        self,
        store: str,
        conversation: str,
        at: datetime,
        event: str | None,
        grace: timedelta | None,
    ) -> Changes:
        """The changes and entries that end a conversation's aliases because of ``event``."""
        return ending(
            self._storage.aliases(conversation, store=store),
            policy_for=self.policy_for,
            at=at,
            now=self._clock.now(),
            event=event,
            grace=grace,
        )

    def _apply(self, changes: Changes) -> tuple[list[Alias], list[TimelineEntry]]:
        """Write ``changes`` and their timeline entries in one transaction."""
        changed, stored = self._storage.update(list(changes.changes), entries=list(changes.entries))
        return list(changed), list(stored)

    def reactivate(
        self, conversation: str, *, for_: timedelta, store: str = DEFAULT_STORE
    ) -> list[Alias]:
        """Reopen a conversation's ended aliases for late mail, for a bounded time.

        Each alias works again until ``now + for_`` — never beyond its own
        expiry. Revoked and expired aliases stay dead. Each reactivation is
        recorded on the timeline.

        Args:
            conversation: the conversation.
            for_: how long the aliases work again.
            store: whose conversation (conversations are per store).

        Returns:
            The aliases that were reactivated.
        """
        conversation = check.conversation(conversation)
        store = check.store(store)
        for_ = check.duration("for_", for_, positive=True)
        aliases = self._storage.aliases(conversation, store=store)
        changed, _ = self._apply(reactivation(aliases, now=self._clock.now(), for_=for_))
        return [self._records.present(a) for a in changed]

    def purge(self, *, older_than: timedelta = timedelta(0)) -> int:
        """Remove the addresses of aliases that stopped working more than ``older_than`` ago.

        What is left of each is a tombstone (a keyed hash of its alias address
        and its metadata): it is never issued again, and mail to it is refused
        as expired, not unknown. Timelines keep their entries: they reference
        participants by key, never by address, but keep what was on the wire
        of everyone else (a third party in ``Cc``), subjects and first words;
        a tombstone keeps its owner key, so that :meth:`forget` still finds
        and redacts them.

        Returns:
            How many aliases were purged.
        """
        older_than = check.duration("older_than", older_than)
        now = self._clock.now()
        return self._storage.purge(before=now - older_than, now=now)

    # -- addresses at rest ----------------------------------------------------

    def rotate_address_keys(
        self,
        *,
        batch_size: int = 500,
        after: str | None = None,
        progress: Callable[[Rotation], None] | None = None,
    ) -> Rotation:
        """Re-seal stored addresses with the newest address key, in bounded batches.

        Records already sealed with the newest key are skipped, so a rotation
        can be interrupted at any point and run again (or resumed from the
        ``last_key`` of the last progress report, as ``after``). Once it has
        finished without corrupt records, the older keys can be dropped from
        ``address_keys``. Records of the previous sealed format (``ct1.``) are
        re-sealed in the current one. Plaintext records (from before
        encryption was turned on) are sealed only with
        ``allow_plaintext_addresses=True``; otherwise they are reported in
        :attr:`Rotation.corrupt <ct_alias.tracker.Rotation.corrupt>` and left
        alone, like records that do not open (a plaintext address in a sealed
        database may have been planted).

        Args:
            batch_size: records read and written per batch.
            after: resume after this storage key.
            progress: called after every batch with the progress so far.

        Raises:
            ConfigurationError: the tracker has no address keys.
            UnknownAddressKey: a record was sealed with a key that is not configured.
        """
        batch_size = check.positive_int("batch_size", batch_size)
        return self._records.rotate(
            self._storage, batch_size=batch_size, after=after, progress=progress
        )
