"""The change sequence: each write transaction's number, stamped on the dispenser rows it changed."""

from __future__ import annotations

from typing import NamedTuple

import sqlalchemy as sa

from app.store.schema import changes, dispensers

# Every write transaction takes the next change sequence number here and stamps the rows it changes with it. The
# row lock it takes orders PostgreSQL writers, so sequence numbers become visible in order: a reader that saw
# number N sees every change numbered up to N.
NEXT_SEQ = sa.update(changes).where(changes.c.id == 1).values(
    seq=changes.c.seq + 1,
    gel_ul=changes.c.gel_ul + sa.bindparam("b_gel", type_=sa.BigInteger),
    hands=changes.c.hands + sa.bindparam("b_hands", type_=sa.BigInteger),
    entries=changes.c.entries + sa.bindparam("b_entries", type_=sa.BigInteger),
).returning(changes.c.seq, changes.c.gel_ul, changes.c.hands, changes.c.entries)


class Change(NamedTuple):
    """A write's change sequence number and the totals of every dispenser row after it."""

    seq: int
    gel_ul: int
    hands: int
    entries: int = 0


def next_seq(conn: sa.Connection, gel_ul: int = 0, hands: int = 0, entries: int = 0) -> Change:
    """Take the next change sequence number in this write transaction, adding the write's use to the totals."""
    return Change(*conn.execute(NEXT_SEQ, {"b_gel": gel_ul, "b_hands": hands, "b_entries": entries}).one())


CURRENT = sa.select(changes.c.seq, changes.c.gel_ul, changes.c.hands, changes.c.entries).where(changes.c.id == 1)
CHANGED_SINCE = sa.select(dispensers).where(dispensers.c.seq > sa.bindparam("since", type_=sa.BigInteger))


def current(conn: sa.Connection) -> Change:
    """The last change sequence number and the totals it left."""
    return Change(*conn.execute(CURRENT).one())


CHANGED_IDS = sa.select(dispensers.c.id).where(dispensers.c.seq > sa.bindparam("since", type_=sa.BigInteger))


def ids_changed_since(conn: sa.Connection, since: int) -> list[str]:
    """The ids of the dispensers written after change `since` (through the seq index)."""
    return [i for (i,) in conn.execute(CHANGED_IDS, {"since": since})]


def changed_since(conn: sa.Connection, since: int) -> list[sa.Row]:
    """The dispenser rows written after change `since` (through the seq index: as many as changed)."""
    return conn.execute(CHANGED_SINCE, {"since": since}).all()
