"""The visitor store: code -> record, expiring idle visitors and capped in size.

The dict keeps codes in (approximately) least-recently-used order: a record is moved to the
end when it is touched a second or more after it was last touched, so both expiry and eviction
scan from the front. A record's ``last`` is the time of that touch: its last activity is less
than a second later. Eviction removes the least recently used code first and is counted.

Touching is lock-free: it sets ``last`` and queues the code; the moves are made in queue order
(so the order is the one moving at once would give) by :meth:`reorder`, which the tracker calls
on every tick, and before every eviction and expiry scan. All mutations of the dict happen
under one lock; lookups are lock-free.

Activity times come from a coarse clock, ``now``, refreshed by :meth:`refresh_clock` (the
tracker calls it on every tick, at most a second apart) and on every creation: a lookup only
copies a reference, and records touched in the same tick share one float.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from kameleoon._droplog import DropLog
from kameleoon._visitors import pending
from kameleoon._visitors.record import Visitor

__all__ = ["TOUCH_GRANULARITY", "VisitorStore"]

TOUCH_GRANULARITY = 1.0  # seconds between two moves of the same code to the LRU end
_MOVES_PER_LOCK = 512  # reorder() releases the lock between batches of moves
_MAX_LINKED = 16  # codes of one record moved together (the latest linked ones)
_MAX_SHARED_SKIPS = 1024  # recent codes of shared records the expiry scan passes over at most


class VisitorStore:
    """Thread-safe map of visitor codes to :class:`Visitor` records.

    ``on_drop(code, visitor, unique)`` is called (outside the lock) for every record removed by
    expiry or eviction, so unsent data can be handed over before it is lost; ``unique`` tells
    whether the code was flagged as a unique identifier (its lines depend on it).
    """

    def __init__(
        self,
        ttl_seconds: float,
        max_visitors: int,
        clock: Callable[[], float] = time.monotonic,
        on_drop: Callable[[str, Visitor, bool], None] | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_visitors = max_visitors
        self.evictions = 0
        self.expirations = 0
        # page views and conversions a record could not keep (bounds of _visitors/data.py)
        self.data_dropped = 0
        self.drop_log = DropLog(log or logging.getLogger("kameleoon"))
        self._clock = clock
        self._on_drop = on_drop
        self._visitors: dict[str, Visitor] = {}
        # Codes touched and not moved to the end yet, in touch order (see reorder).
        self._moves: deque[str] = deque()
        self.now = clock()
        self._unique_ids: set[str] = set()
        self._lock = threading.Lock()
        # Guards the *contents* of records (add_data, assignments, tracking). Never taken while
        # holding ``_lock``; ``_lock`` may be taken while holding it. Reentrant: a record
        # replaced while data is added (link) is handed over, which builds its lines under it.
        self.data_lock = threading.RLock()
        # Exposures recorded by decisions, lock-free (see note_exposure).
        self._exposures: deque[tuple[Visitor, Any]] = deque()
        # Bumped before every build of tracking lines: an assignment recorded in the current
        # generation is known to be still unsent (see KameleoonClient._decide).
        self.generation = 0

    def __len__(self) -> int:
        return len(self._visitors)

    def note_exposure(self, visitor: Visitor, experiment_id: Any) -> None:
        """Marks the visitor's assignment of ``experiment_id`` unsent, without taking a lock.

        Decisions store the assignment itself (one atomic dict write) and queue this note; the
        pending bit is set by :meth:`apply_exposures`, which the tracker calls with the data
        lock held before it reads pending items. So the hottest path never locks.
        """
        self._exposures.append((visitor, experiment_id))

    def apply_exposures(self) -> None:
        """Sets the pending bits of the queued exposures (caller holds ``data_lock``, and
        builds tracking lines next: a new generation starts)."""
        self.generation += 1
        exposures = self._exposures
        while exposures:
            visitor, experiment_id = exposures.popleft()
            assigned = visitor.assigned
            assignment = assigned.get(experiment_id) if assigned is not None else None
            if assignment is not None:
                visitor.pending |= pending.bit(pending.ASSIGNMENT, assignment[3])

    def forget_unsent(self) -> None:
        """Marks every record's data as sent and drops the queued exposures (a forked child: the
        parent sends them); a new generation starts, so no assignment counts as queued. The
        mapping identifier stays unsent: it goes with every request of its visitor."""
        self._exposures.clear()
        self.generation += 1
        for visitor in list(self._visitors.values()):
            visitor.pending &= _mapping_bit(visitor)

    def refresh_clock(self) -> float:
        self.now = now = self._clock()
        return now

    def get(self, code: str) -> Visitor | None:
        """The record of ``code`` (touched), or ``None``."""
        visitor = self._visitors.get(code)
        if visitor is not None and visitor.last is not self.now:
            self._touch(code, visitor)
        return visitor

    def peek(self, code: str) -> Visitor | None:
        """The record of ``code``, or ``None``, not touched: a read that is not the visitor's
        activity."""
        return self._visitors.get(code)

    def get_or_create(self, code: str) -> Visitor:
        """The record of ``code``, created if missing (which may evict the oldest record)."""
        visitor = self._visitors.get(code)
        if visitor is not None:
            if visitor.last is not self.now:
                self._touch(code, visitor)
            return visitor
        dropped: list[tuple[str, Visitor, bool]] = []
        with self._lock:
            visitor = self._visitors.get(code)
            if visitor is None:
                visitor = Visitor(self.refresh_clock())
                if len(self._visitors) >= self.max_visitors:
                    self._move_touched(len(self._moves))
                while len(self._visitors) >= self.max_visitors:
                    dropped.append(self._pop_oldest())
                    self.evictions += 1
                self._visitors[code] = visitor
                dropped = self._leaving(dropped)
        self._hand_over(dropped)
        return visitor

    def link(self, code: str, visitor: Visitor, owner: str) -> None:
        """Makes ``code`` share ``owner``'s record ``visitor`` (cross-device mapping); its own
        record is replaced, and handed over like a dropped one (its unsent data is still sent),
        unless another code still shares it (then that data stays there, to go with that code).

        The codes sharing a record are moved together when it is touched through any of them:
        expiry and eviction go by the record's activity, and a code left behind at the front
        with a recent record would stop the expiry scan and be evicted first."""
        with self._lock:
            replaced = self._visitors.pop(code, None)
            self._visitors[code] = visitor
            unique = code in self._unique_ids
            sharing = [c for c in self._codes_of(visitor) if c not in (code, owner)]
            visitor.extras().linked = (*sharing[-_MAX_LINKED + 2 :], owner, code)
            if replaced is not None and next(self._codes_of(replaced), None) is not None:
                replaced = None  # still another code's record (or this one's): nothing is lost
        if replaced is not None:
            self._hand_over([(code, replaced, unique)])

    def settle(self, code: str, visitor: Visitor) -> None:
        """After a write to ``visitor``, the record of ``code`` when the writer got it: if the
        store dropped it meanwhile (evicted, expired), it is handed over again with what the
        write added (the hand-over made when it was dropped may have run before the write)."""
        if self._visitors.get(code) is not visitor:
            self._hand_over([(code, visitor, code in self._unique_ids)])

    def is_unique_identifier(self, code: str) -> bool:
        return code in self._unique_ids

    def set_unique_identifier(self, code: str, value: bool) -> None:
        """Flags ``code`` (or not) as a unique identifier; a code without a record (dropped
        meanwhile) is not flagged, so the flags never outgrow the records."""
        with self._lock:
            if value and code in self._visitors:
                self._unique_ids.add(code)
            else:
                self._unique_ids.discard(code)

    def columns(self) -> tuple[list[str], list[Visitor]]:
        """A snapshot of every code and of their records, in the same order: two lists and no
        tuple per record (the garbage collector does not run over the whole store for them)."""
        with self._lock:
            return list(self._visitors), list(self._visitors.values())

    def purge(self) -> int:
        """Removes records idle for longer than the TTL; returns how many were removed."""
        now = self.refresh_clock()
        cutoff = now - self.ttl_seconds
        idle: list[str] = []
        with self._lock:
            self._move_touched(len(self._moves))
            skips = _MAX_SHARED_SKIPS
            for code, visitor in self._visitors.items():
                if visitor.last > cutoff + 2 * TOUCH_GRANULARITY:
                    if skips and visitor.extra is not None and visitor.extra.linked:
                        skips -= 1  # a code of a shared record, which may not have moved with it
                        continue
                    break  # the rest was touched later (order is LRU up to the granularity)
                if visitor.last + TOUCH_GRANULARITY <= cutoff:  # last activity < last + granularity
                    idle.append(code)
            self.expirations += len(idle)
            dropped = self._leaving([self._remove(code) for code in idle])
        self._hand_over(dropped)
        return len(idle)

    def reorder(self) -> None:
        """Moves the codes touched since the last call to the end, in the order they were
        touched, taking the lock for a few hundred moves at a time."""
        moves = self._moves
        for _ in range(0, len(moves), _MOVES_PER_LOCK):
            with self._lock:
                self._move_touched(_MOVES_PER_LOCK)

    def clear(self) -> None:
        with self._lock:
            self._moves.clear()
            self._visitors.clear()
            self._unique_ids.clear()

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._visitors))

    # -- internals ------------------------------------------------------------------------
    def _touch(self, code: str, visitor: Visitor) -> None:
        # Lock-free: the move is queued (reorder makes it). ``last`` only changes with a queued
        # move: were it refreshed without moving, a record used more often than the granularity
        # would stay at the front forever (and be evicted first, and stop the purge scan before
        # the idle records behind it).
        now = self.now
        if now - visitor.last >= TOUCH_GRANULARITY:
            visitor.last = now
            moves = self._moves
            moves.append(code)
            if visitor.extra is not None and visitor.extra.linked:  # the codes still sharing it move too
                moves.extend(c for c in self._codes_of(visitor) if c != code)
            if len(moves) > self.max_visitors:  # nobody reorders (no tracker): bounded anyway
                self.reorder()

    def _move_touched(self, count: int) -> None:
        """Makes up to ``count`` queued moves (caller holds the lock). A code that left the
        store since is skipped; one touched twice moves twice (it ends where the last put it)."""
        moves, visitors = self._moves, self._visitors
        for _ in range(min(count, len(moves))):
            code = moves.popleft()
            visitor = visitors.get(code)
            if visitor is not None:
                del visitors[code]
                visitors[code] = visitor

    def _codes_of(self, visitor: Visitor) -> Iterator[str]:
        """The codes linked to ``visitor`` that still have it as their record (exact when the
        caller holds the lock)."""
        linked = visitor.extra.linked if visitor.extra is not None else ()
        visitors = self._visitors
        return (c for c in linked if visitors.get(c) is visitor)

    def _leaving(self, dropped: list[tuple[str, Visitor, bool]]) -> list[tuple[str, Visitor, bool]]:
        """The records to hand over among those just removed: each one once, under its owner's
        code when that code left too. (A record another code still has is handed over as well:
        its data may have been scheduled under the code that left, and nothing else would send
        it; the code that left had it until now.)"""
        chosen: dict[Visitor, tuple[str, Visitor, bool]] = {}
        for entry in dropped:
            code, visitor, _ = entry
            if visitor not in chosen or (visitor.extra is not None and code == visitor.extra.mapping):
                chosen[visitor] = entry
        return list(chosen.values())

    def _pop_oldest(self) -> tuple[str, Visitor, bool]:
        return self._remove(next(iter(self._visitors)))

    def _remove(self, code: str) -> tuple[str, Visitor, bool]:
        """Takes ``code`` out (caller holds the lock), with whether it was a unique identifier."""
        unique = code in self._unique_ids
        self._unique_ids.discard(code)
        return code, self._visitors.pop(code), unique

    def _hand_over(self, dropped: list[tuple[str, Visitor, bool]]) -> None:
        if self._on_drop is None:
            return
        for code, visitor, unique in dropped:
            self._on_drop(code, visitor, unique)


def _mapping_bit(visitor: Visitor) -> int:
    """The pending bit of the visitor's mapping identifier, 0 when it has none."""
    extra = visitor.extra
    if extra is None or extra.mapping_index is None:
        return 0
    for position, (index, _) in enumerate(visitor.custom_items()):
        if index == extra.mapping_index:
            return pending.bit(pending.CUSTOM, position)
    return 0
