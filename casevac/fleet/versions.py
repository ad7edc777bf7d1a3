"""The fleet's version: one counter (table fleet_version), bumped in the transaction of every committed write to
assets or facilities, so that a process may keep what it reads of the fleet in memory and check it with one
small query per read (`cached`: the snapshots dispatch ranks, casevac.fleet.assets and facilities).

Whoever makes the write, the session notices it (an ORM flush of an Asset or a Facility, an INSERT, UPDATE or
DELETE statement on their tables), so no write path can forget the bump. The bump is the transaction's last
statement, just before the commit: the counter's row lock is the last lock a writer takes and is held only for
the commit, so it cannot close a deadlock cycle. A write committed before a read starts has moved the counter
that read compares with; rows loaded after the version was read can only be newer than it, and are loaded
again at the next change. The first value after an empty table is random, so a database emptied or restored
under a running process does not meet the versions it counted before.
"""

from __future__ import annotations

import secrets
import weakref
from typing import Callable, TypeVar

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from casevac.fleet.models import Asset, Facility, FleetVersion

_FLEET = (Asset, Facility)
_TABLES = frozenset({Asset.__tablename__, Facility.__tablename__})
_COUNTER = FleetVersion.__table__
_VERSION = select(_COUNTER.c.version).where(_COUNTER.c.id == 1)
# session.info key: this transaction has written to the fleet (its reads see what is not yet counted).
_WRITTEN = "fleet.written"
# Entries kept per database, (what, mission) each: a few per mission; beyond, all are dropped.
MAX_ENTRIES = 256
# engine -> {(what, mission_id): (version, value)}; weak, so an engine disposed of takes its entries along.
_kept: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

T = TypeVar("T")


def register() -> None:
    """Watch every session for fleet writes (casevac.init_app; idempotent)."""
    for name, listener in (
        ("before_flush", _before_flush),
        ("do_orm_execute", _on_execute),
        ("before_commit", _before_commit),
        ("after_transaction_end", _after_transaction_end),
    ):
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)


def current(session) -> int | None:
    """The fleet's version as this session's transaction sees it (None: never written)."""
    return session.execute(_VERSION).scalar()


def written(session) -> bool:
    """This session's transaction has written to the fleet (flushed: a pending change is flushed by any query)."""
    return bool(session.info.get(_WRITTEN))


def cached(session, what, mission_id: str, load: Callable[[], T]) -> T:
    """`load()` (what it reads of the mission's fleet; `what`: a hashable name for it), kept per process and
    database while the fleet's version is unchanged. Read afresh, and not kept, when this transaction has
    itself written to the fleet: what it sees is not committed, nor counted, yet. The value is shared by every
    caller: never change it."""
    version = current(session)  # first: its autoflush is what marks a pending fleet write as written
    if written(session):
        return load()
    bind = session.get_bind()
    kept = _kept.get(bind)
    if kept is None:
        kept = _kept[bind] = {}
    entry = kept.get((what, mission_id))
    if entry is not None and entry[0] == version:
        return entry[1]
    value = load()
    if len(kept) >= MAX_ENTRIES:
        kept.clear()
    kept[(what, mission_id)] = (version, value)
    return value


def _before_flush(session, flush_context, instances) -> None:
    if not session.info.get(_WRITTEN) and any(
        isinstance(record, _FLEET) for changed in (session.new, session.dirty, session.deleted) for record in changed
    ):
        session.info[_WRITTEN] = True


def _on_execute(state) -> None:
    if state.is_select or state.session.info.get(_WRITTEN):
        return
    statement = state.statement
    # An ORM statement's table is an annotated copy of the model's: compared by name.
    if getattr(statement, "is_dml", False) and getattr(getattr(statement, "table", None), "name", None) in _TABLES:
        state.session.info[_WRITTEN] = True


def _before_commit(session) -> None:
    session.flush()  # the commit flushes anyway; first, so that a pending fleet write is noticed before the bump
    if session.info.get(_WRITTEN):
        session.execute(_bump(session.get_bind().dialect.name))


def _bump(dialect: str):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(_COUNTER).values(id=1, version=secrets.randbits(62))
    return statement.on_conflict_do_update(index_elements=[_COUNTER.c.id], set_={"version": _COUNTER.c.version + 1})


def _after_transaction_end(session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(_WRITTEN, None)
