"""The audit log's hash chain: every way of rewriting history that issue 9 names is either
refused by the database or found by ``verify``, which names the first entry touched; appends
from two writers at once, and one that rolls back, leave one valid chain."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Engine, exc, text

from matrix import audit_log
from matrix.audit_chain import Anchor, Verdict, anchor, entry_hash, verify
from matrix.db import _alembic_config, make_engine, migrate

SQLITE_GUARDS = (
    "audit_log_no_update",
    "audit_log_no_delete",
    "audit_log_only_at_head",
    "audit_head_moves_by_append",
)


def fill(engine: Engine, n: int = 6) -> Anchor:
    """``n`` entries, one transaction each, as the bot writes them; the head afterwards."""
    for i in range(n):
        with engine.begin() as conn:
            audit_log.record(conn, f"wx{i % 3}", "command.notice", "K1", text=f"通知 {i}")
    with engine.connect() as conn:
        return anchor(conn)


def check(engine: Engine, with_anchor: Anchor | None = None) -> Verdict:
    with engine.connect() as conn:
        return verify(conn, with_anchor)


def tamper(engine: Engine, *statements: str, **params: object) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement), params)


def found(verdict: Verdict) -> tuple[str, int, int | None]:
    assert verdict.problem is not None, "the tampering went unnoticed"
    return verdict.problem.kind, verdict.problem.entry_id, verdict.problem.other


def drop_sqlite_guards(engine: Engine) -> None:
    tamper(engine, *(f"DROP TRIGGER {name}" for name in SQLITE_GUARDS))


def row(engine: Engine, entry_id: int) -> dict[str, object]:
    with engine.connect() as conn:
        found = conn.execute(text("SELECT * FROM audit_log WHERE id = :i"), {"i": entry_id})
        return dict(found.one()._mapping)


# --- an untouched log ---------------------------------------------------------------------------


def test_an_untouched_log_is_intact_and_its_ids_count_without_gaps(engine: Engine) -> None:
    head = fill(engine, 6)
    verdict = check(engine, head)
    assert verdict.intact and verdict.entries == 6 and verdict.head == head
    with engine.connect() as conn:
        ids = conn.execute(text("SELECT id FROM audit_log ORDER BY id")).scalars().all()
    assert ids == [1, 2, 3, 4, 5, 6]
    assert head.entry_id == 6 and head.hash == row(engine, 6)["hash"]


def test_an_empty_log_is_intact(engine: Engine) -> None:
    verdict = check(engine)
    assert verdict.intact and verdict.entries == 0 and verdict.head.entry_id == 0


def _roll_back_an_append(engine: Engine) -> None:
    fill(engine, 2)
    with pytest.raises(RuntimeError), engine.begin() as conn:
        audit_log.record(conn, "wx1", "command.notice", "K1")
        raise RuntimeError("the command failed after recording")
    fill(engine, 1)
    verdict = check(engine)
    assert verdict.intact and verdict.entries == 3
    assert verdict.head.entry_id == 3  # the rolled-back entry's id was taken again


def test_an_append_that_rolls_back_leaves_no_trace_in_the_chain(engine: Engine) -> None:
    _roll_back_an_append(engine)


# --- SQLite: what the database refuses, and what verify finds once the guards are dropped ------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET actor = 'someone else' WHERE id = 2",
        "DELETE FROM audit_log WHERE id = 2",
        "INSERT OR REPLACE INTO audit_log SELECT id, at, 'someone else', action, unit_code, "
        "detail, prev_hash, hash FROM audit_log WHERE id = 2",
        "REPLACE INTO audit_log SELECT * FROM audit_log WHERE id = 6",
        "UPDATE audit_head SET last_id = 3",
        "DELETE FROM audit_head",
        "INSERT OR REPLACE INTO audit_head SELECT 1, 3, last_hash, last_at, 0 FROM audit_head",
    ],
)
def test_sqlite_refuses_rewriting_an_entry_or_the_head(engine: Engine, statement: str) -> None:
    head = fill(engine)
    with pytest.raises(exc.DBAPIError, match=r"append-only|only by an append"):
        tamper(engine, statement)
    assert check(engine, head).intact and row(engine, 2)["actor"] == "wx1"


def test_sqlite_refuses_a_forged_entry_even_when_the_head_is_moved_for_it(engine: Engine) -> None:
    head = fill(engine)
    forged = "INSERT INTO audit_log VALUES (7, :at, 'wx0', 'command.notice', 'K1', '{}', :p, 'x')"
    with pytest.raises(exc.DBAPIError, match="append-only"):  # dated before entry 6
        tamper(engine, "UPDATE audit_head SET last_id = 7", forged, at="2020-01-01", p=head.hash)
    with pytest.raises(exc.DBAPIError, match="append-only"):  # not linked to the head
        tamper(engine, "UPDATE audit_head SET last_id = 7", forged, at="2999-01-01", p="0" * 64)
    assert check(engine, head).intact


@pytest.mark.parametrize(
    "statements, expected",
    [
        pytest.param(
            ['UPDATE audit_log SET detail = \'{"text": "改过"}\' WHERE id = 4'],
            ("changed", 4, None),
            id="update",
        ),
        pytest.param(["DELETE FROM audit_log WHERE id IN (3, 4)"], ("missing", 3, 4), id="delete"),
        pytest.param(
            [
                "INSERT OR REPLACE INTO audit_log SELECT id, at, 'someone else', action, "
                "unit_code, detail, prev_hash, hash FROM audit_log WHERE id = 2"
            ],
            ("changed", 2, None),
            id="insert-or-replace",
        ),
        pytest.param(
            [
                "UPDATE audit_log SET id = 100 WHERE id = 2",
                "UPDATE audit_log SET id = 2 WHERE id = 4",
                "UPDATE audit_log SET id = 4 WHERE id = 100",
            ],
            ("reordered", 2, 4),
            id="whole-rows-moved",
        ),
    ],
)
def test_sqlite_tampering_with_the_guards_dropped_is_found(
    engine: Engine, statements: list[str], expected: tuple[str, int, int | None]
) -> None:
    fill(engine)
    drop_sqlite_guards(engine)
    tamper(engine, *statements)
    assert found(check(engine)) == expected


def test_sqlite_an_entry_changed_and_rehashed_is_found_by_the_next_link(engine: Engine) -> None:
    fill(engine)
    drop_sqlite_guards(engine)
    old = row(engine, 3)
    new_hash = entry_hash(3, _at(old), "wx9", "command.notice", "K1", "{}", str(old["prev_hash"]))
    tamper(
        engine,
        "UPDATE audit_log SET actor = 'wx9', detail = '{}', hash = :h WHERE id = 3",
        h=new_hash,
    )
    assert found(check(engine)) == ("changed", 3, None)


@pytest.mark.parametrize("move_head", [False, True])
def test_sqlite_a_back_dated_forged_entry_is_found(engine: Engine, move_head: bool) -> None:
    """The forger even computes the hash right; the date before its predecessor gives it away,
    or the head that never moved to it."""
    head = fill(engine)
    drop_sqlite_guards(engine)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    digest = entry_hash(7, at, "wx0", "binding.bind", "K1", "{}", head.hash)
    tamper(
        engine,
        "INSERT INTO audit_log VALUES (7, :at, 'wx0', 'binding.bind', 'K1', '{}', :p, :h)",
        at=at.strftime("%Y-%m-%d %H:%M:%S.%f"),
        p=head.hash,
        h=digest,
    )
    if move_head:
        tamper(engine, "UPDATE audit_head SET last_id = 7, last_hash = :h", h=digest)
    assert found(check(engine)) == ("inserted", 7, None)


def test_sqlite_two_entries_swapped_are_found_as_reordered(engine: Engine) -> None:
    fill(engine)
    drop_sqlite_guards(engine)
    second, fourth = row(engine, 2), row(engine, 4)
    columns = ("at", "actor", "action", "unit_code", "detail")
    sets = ", ".join(f"{c} = :{c}" for c in columns)
    tamper(engine, f"UPDATE audit_log SET {sets} WHERE id = 2", **{c: fourth[c] for c in columns})
    tamper(engine, f"UPDATE audit_log SET {sets} WHERE id = 4", **{c: second[c] for c in columns})
    assert found(check(engine)) == ("reordered", 2, 4)


def test_sqlite_a_cut_tail_is_found_by_the_head_and_with_the_head_reset_by_the_anchor(
    engine: Engine,
) -> None:
    head = fill(engine)
    drop_sqlite_guards(engine)
    tamper(engine, "DELETE FROM audit_log WHERE id > 4")
    assert found(check(engine)) == ("missing", 5, 6)
    kept = row(engine, 4)
    tamper(
        engine,
        "UPDATE audit_head SET last_id = 4, last_hash = :h, last_at = :at",
        h=kept["hash"],
        at=kept["at"],
    )
    assert check(engine).intact  # inside the database nothing is left to compare with
    assert found(check(engine, head)) == ("missing", 5, 6)


def test_sqlite_a_chain_rewritten_from_the_start_is_found_by_the_anchor(engine: Engine) -> None:
    head = fill(engine, 4)
    drop_sqlite_guards(engine)
    tamper(engine, "UPDATE audit_log SET actor = 'wx9' WHERE id = 1")
    prev = "0" * 64
    for entry_id in range(1, 5):
        r = row(engine, entry_id)
        digest = entry_hash(
            entry_id, _at(r), str(r["actor"]), "command.notice", "K1", str(r["detail"]), prev
        )
        tamper(
            engine,
            "UPDATE audit_log SET prev_hash = :p, hash = :h WHERE id = :i",
            p=prev,
            h=digest,
            i=entry_id,
        )
        prev = digest
    tamper(engine, "UPDATE audit_head SET last_hash = :h", h=prev)
    assert check(engine).intact
    assert found(check(engine, head)) == ("rewritten", 4, None)


def _at(r: dict[str, object]) -> datetime:
    value = r["at"]
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


# --- PostgreSQL -----------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize(
    "statement",
    [
        "TRUNCATE audit_log",
        "TRUNCATE audit_head",
        "UPDATE audit_log SET actor = 'someone else' WHERE id = 2",
        "DELETE FROM audit_log WHERE id = 2",
        "INSERT INTO audit_log SELECT * FROM audit_log WHERE id = 2 "
        "ON CONFLICT (id) DO UPDATE SET actor = 'someone else'",
        "INSERT INTO audit_log (at, actor, action, detail, prev_hash, hash) "
        "VALUES (now(), 'wx0', 'binding.bind', '{}', '', '')",
        "UPDATE audit_head SET last_id = 2",
    ],
)
def test_postgresql_refuses_rewriting_an_entry_or_the_head(
    pg_engine: Engine, statement: str
) -> None:
    head = fill(pg_engine)
    with pytest.raises(exc.DBAPIError, match=r"append-only|only by an append"):
        tamper(pg_engine, statement)
    assert check(pg_engine, head).intact


@pytest.mark.postgres
def test_postgresql_truncate_with_the_triggers_disabled_is_found(pg_engine: Engine) -> None:
    head = fill(pg_engine)
    tamper(
        pg_engine,
        "ALTER TABLE audit_log DISABLE TRIGGER USER",
        "ALTER TABLE audit_head DISABLE TRIGGER USER",
        "TRUNCATE audit_log",
    )
    assert found(check(pg_engine)) == ("missing", 1, 6)
    tamper(pg_engine, "UPDATE audit_head SET last_id = 0, last_hash = :h", h="0" * 64)
    assert check(pg_engine).intact
    assert found(check(pg_engine, head)) == ("missing", 1, 6)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "statements, expected",
    [
        pytest.param(
            [
                "SET session_replication_role = replica",
                "UPDATE audit_log SET actor = 'someone else' WHERE id = 5",
            ],
            ("changed", 5, None),
            id="replica-update",
        ),
        pytest.param(
            [
                "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
                "DELETE FROM audit_log WHERE id = 2",
            ],
            ("missing", 2, 2),
            id="disabled-trigger-delete",
        ),
    ],
)
def test_postgresql_tampering_with_the_guards_off_is_found(
    pg_engine: Engine, statements: list[str], expected: tuple[str, int, int | None]
) -> None:
    fill(pg_engine)
    tamper(pg_engine, *statements)
    assert found(check(pg_engine)) == expected


@pytest.mark.postgres
def test_postgresql_a_forged_entry_in_replica_mode_is_found(pg_engine: Engine) -> None:
    head = fill(pg_engine)
    tamper(
        pg_engine,
        "SET session_replication_role = replica",
        "INSERT INTO audit_log VALUES (7, now() - interval '30 days', 'wx0', 'binding.bind', "
        "'K1', '{}', :p, :h)",
        p=head.hash,
        h="f" * 64,
    )
    assert found(check(pg_engine)) == ("inserted", 7, None)


def _append_concurrently(engine: Engine, writers: int, each: int) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def write(n: int) -> None:
        try:
            start.wait()
            for i in range(each):
                with engine.begin() as conn:
                    audit_log.record(conn, f"wx{n}", "command.notice", "K1", i=i)
        except BaseException as e:  # reported by the assert below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def _check_concurrent(engine: Engine, writers: int, each: int) -> None:
    _append_concurrently(engine, writers, each)
    verdict = check(engine)
    assert verdict.intact and verdict.entries == writers * each
    assert verdict.head.entry_id == writers * each
    with engine.connect() as conn:
        actors = conn.execute(text("SELECT actor FROM audit_log")).scalars().all()
    assert {a: actors.count(a) for a in set(actors)} == {f"wx{n}": each for n in range(writers)}


@pytest.mark.postgres
def test_postgresql_two_writers_at_once_make_one_valid_chain(pg_engine: Engine) -> None:
    _check_concurrent(pg_engine, writers=2, each=60)


def test_sqlite_two_writers_at_once_make_one_valid_chain(engine: Engine) -> None:
    _check_concurrent(engine, writers=2, each=40)


@pytest.mark.postgres
def test_postgresql_a_rolled_back_append_leaves_the_chain_valid(pg_engine: Engine) -> None:
    _roll_back_an_append(pg_engine)


# --- bounded text ------------------------------------------------------------------------------


def test_long_text_is_kept_as_its_start_its_length_and_its_hash(engine: Engine) -> None:
    body = "请各校" + "很长" * 50_000
    with engine.begin() as conn:
        audit_log.record(conn, "wx1", "command.denied", "K1", text=body, args={"text": body})
        [entry] = audit_log.entries(conn)
    assert len(entry.detail) < 1_000
    detail = json.loads(entry.detail)
    for summary in (detail["text"], detail["args"]["text"]):
        assert summary["excerpt"] == body[:200] and summary["chars"] == len(body)
        assert len(summary["sha256"]) == 64
    assert check(engine).intact


# --- entries from before the chain --------------------------------------------------------------


def test_the_migration_hashes_the_entries_already_there(engine: Engine) -> None:
    """History from before migration 0005 (ids with gaps, times not in order) joins the chain."""
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004")
    base = datetime(2026, 11, 24, 9, tzinfo=UTC)
    for entry_id, minutes in ((1, 0), (2, 5), (5, 3)):
        tamper(
            engine,
            "INSERT INTO audit_log (id, at, actor, action, unit_code, detail) "
            "VALUES (:i, :at, 'wx1', 'roster.import', NULL, '{}')",
            i=entry_id,
            at=(base + timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M:%S.%f"),
        )
    migrate(engine)
    verdict = check(engine)
    assert verdict.intact and verdict.entries == 3 and verdict.head.entry_id == 5
    fill(engine, 2)
    assert check(engine).intact and check(engine).head.entry_id == 7
    drop_sqlite_guards(engine)
    tamper(engine, "UPDATE audit_log SET actor = 'wx9' WHERE id = 2")
    assert found(check(engine)) == ("changed", 2, None)


# --- the bot's own database role (README: "A database role for the bot") ------------------------


BOT_GRANTS = """
GRANT USAGE ON SCHEMA public TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role};
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM {role};
REVOKE INSERT, DELETE, TRUNCATE ON audit_head FROM {role};
"""


@pytest.mark.postgres
def test_postgresql_the_bot_role_appends_but_cannot_switch_the_guards_off(
    pg_engine: Engine,
) -> None:
    role = f"qm_bot_{uuid.uuid4().hex[:8]}"
    tamper(pg_engine, f"CREATE ROLE {role} LOGIN", BOT_GRANTS.format(role=role))
    url = pg_engine.url.set(username=role)
    bot = make_engine(url.render_as_string(hide_password=False))
    try:
        fill(bot, 3)
        for statement in (
            "ALTER TABLE audit_log DISABLE TRIGGER USER",
            "SET session_replication_role = replica",
            "TRUNCATE audit_log",
            "DROP TRIGGER audit_log_append_only ON audit_log",
            "UPDATE audit_log SET actor = 'x'",
        ):
            with pytest.raises(exc.DBAPIError, match=r"permission denied|must be owner"):
                tamper(bot, statement)
        assert check(bot).intact and check(bot).entries == 3
    finally:
        bot.dispose()
        tamper(pg_engine, f"DROP OWNED BY {role}", f"DROP ROLE {role}")
