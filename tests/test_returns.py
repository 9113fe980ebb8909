"""The returns core without the chat: a form is written with its notice or not at all, a batch
of answers is checked one by one and written together (the latest answer of a unit wins), and
the table has one row per unit of the asker's subtree."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import Engine, func, select

from matrix.blueprint import Blueprint
from matrix.relay.errors import BadCommand, ContentBlocked, RelayError, UnknownCode
from matrix.returns.answers import Answered, AnswerRequest, parse_answer, record_answers
from matrix.returns.forms import FormCard, issue_form
from matrix.returns.table import form_table
from matrix.tables import ACKNOWLEDGEMENT, AUDIT_ENTRY, FORM, FORM_ANSWER, NOTICE
from tests.worlds import RelayWorld


def compose(card: FormCard) -> str:
    return f"[{card.code}] {card.title}: {' '.join(card.fields)}"


@pytest.fixture
def relay(province_db: Engine, bp: Blueprint) -> RelayWorld:
    """The province has sent form F1 (人数, 中队数), and it has reached every group."""
    world = RelayWorld(province_db, bp)
    send_form(world, "人数统计 字段 人数 中队数 截止 17:00")
    world.deliver(until=world.clock.now() + timedelta(minutes=10))
    return world


def send_form(world: RelayWorld, text: str) -> None:
    """The province office sends ``text`` as #填报 from its own group."""
    issue_form(
        world.env, world.room("P"), world.contact("P", "office_staff"), text, compose=compose
    )


def count(engine: Engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def ask(relay: RelayWorld, unit: str, role: str, text: str, room: str) -> AnswerRequest:
    return AnswerRequest(relay.room(room), relay.contact(unit, role), parse_answer(text))


def test_the_form_and_its_notice_are_written_together(relay: RelayWorld):
    with relay.engine.connect() as conn:
        body = conn.execute(select(NOTICE.c.body)).scalar_one()
    assert body == "[F1] 人数统计: 人数 中队数"  # the notice carries the form's id
    assert count(relay.engine, FORM) == 1


def test_a_blocked_form_writes_neither(province_db: Engine, bp: Blueprint):
    world = RelayWorld(province_db, bp)
    with pytest.raises(ContentBlocked):
        send_form(world, "机密人数统计 字段 人数 截止 17:00")
    assert count(province_db, FORM) == count(province_db, NOTICE) == 0


def test_a_batch_is_checked_one_by_one_and_the_latest_answer_wins(relay: RelayWorld):
    batch = [
        ask(relay, "K1S1", "brigade_counselor", "F1 120 4", "K1"),
        ask(relay, "K1S2", "brigade_counselor", "F1 99", "K1"),  # one value short
        ask(relay, "K1S1", "brigade_counselor", "F1 中队数=5", "K1"),  # corrects the first
        ask(relay, "K2", "league_staff", "F1 30 2", "C1"),
        ask(relay, "K2", "league_staff", "F7 30 2", "C1"),
    ]
    done = record_answers(relay.env, batch)
    assert isinstance(done[0], Answered) and done[0].revision == 1
    assert isinstance(done[1], BadCommand) and "你填了 1 项" in str(done[1])
    assert isinstance(done[2], Answered) and done[2].revision == 2
    assert done[2].answers == {"人数": "120", "中队数": "5"}
    assert isinstance(done[3], Answered) and done[3].units == ["乙2县"]
    assert isinstance(done[4], UnknownCode)
    assert count(relay.engine, FORM_ANSWER) == 2
    assert count(relay.engine, ACKNOWLEDGEMENT) == 2  # the first answer is the receipt
    with relay.engine.connect() as conn:
        logged = conn.execute(
            select(func.count()).where(AUDIT_ENTRY.c.action == "returns.answer")
        ).scalar_one()
    assert logged == 3  # every accepted answer


def test_answers_after_the_deadline_are_refused(relay: RelayWorld):
    relay.clock.advance_to(relay.clock.now().replace(hour=9, minute=1) + timedelta(hours=8))
    [late] = record_answers(relay.env, [ask(relay, "K1S1", "brigade_counselor", "F1 1 2", "K1")])
    assert isinstance(late, RelayError) and "截止" in str(late)
    assert count(relay.engine, FORM_ANSWER) == 0


def test_the_table_has_a_row_per_unit_of_the_subtree(relay: RelayWorld):
    record_answers(relay.env, [ask(relay, "K1S1", "brigade_counselor", "F1 120 4", "K1")])
    whole = form_table(relay.env, 1, within="P", as_of=date(2026, 11, 24))
    assert len(whole.rows) == 10 and whole.answered == 1
    county = form_table(relay.env, 1, within="K1", as_of=date(2026, 11, 24))
    assert [r.unit for r in county.rows] == ["乙1县", "乙1县第1小学", "乙1县第2小学"]
    assert county.rows[1].answers == ["120", "4"] and county.rows[2].answers == ["", ""]
    local = relay.env.now().strftime("%Y-%m-%d %H:%M")  # the answer's time, to the minute
    assert county.rows[1].at == local and county.rows[2].at == ""


def test_the_xlsx_keeps_a_formula_like_answer_as_text(relay: RelayWorld):
    import io

    from openpyxl import load_workbook

    from bot.render.returns import render_file

    record_answers(
        relay.env,
        [
            ask(
                relay,
                "K1S1",
                "brigade_counselor",
                'F1\n人数==HYPERLINK("http://x")\n中队数=4',
                "K1",
            )
        ],
    )
    table = form_table(relay.env, 1, within="K1", as_of=date(2026, 11, 24))
    sheet = load_workbook(io.BytesIO(render_file(table, "xlsx"))).active
    cell = next(
        c for row in sheet.iter_rows() for c in row if c.value and "HYPERLINK" in str(c.value)
    )
    assert cell.value == '=HYPERLINK("http://x")' and cell.data_type == "s" and cell.quotePrefix
    assert sheet.freeze_panes == "A4" and sheet.print_title_rows == "$3:$3"
    assert "'=HYPERLINK" in render_file(table, "csv").decode("utf-8-sig")


def test_the_chats_answer_writer_coalesces_answers_arriving_together(relay: RelayWorld):
    import asyncio

    from bot.chat.returns import AnswerWriter

    class Core:  # the one service the writer uses: the quick worker threads
        async def offload_quick(self, fn, /, *args, **kwargs):
            return await asyncio.to_thread(fn, *args, **kwargs)

    writer = AnswerWriter(relay.env, Core())  # type: ignore[arg-type]
    asks = [
        ask(relay, "K1S1", "brigade_counselor", "F1 120 4", "K1"),
        ask(relay, "K1S2", "brigade_counselor", "F1 99", "K1"),
        ask(relay, "K2", "league_staff", "F1 30 2", "C1"),
    ]

    async def together() -> list:
        return await asyncio.gather(*(writer.submit(a) for a in asks), return_exceptions=True)

    first, refused, third = asyncio.run(together())
    assert writer.batches == 1  # one transaction for the three
    assert isinstance(first, Answered) and isinstance(third, Answered)
    assert isinstance(refused, BadCommand) and "你填了 1 项" in str(refused)
    assert count(relay.engine, FORM_ANSWER) == 2


def test_text_xml_forbids_is_dropped_from_every_workbook_cell():
    """A roster name or a form title may hold U+FFFF or a lone surrogate: one of them in a cell
    would make the whole file unreadable, in the streamed writer and through openpyxl alike."""
    import io

    from openpyxl import Workbook, load_workbook

    from bot.render.xlsx_stream import BODY, StreamSheet
    from matrix.cells import put

    hostile = "甲\uffff乙\ufffe丙\ud800丁"
    sheet = StreamSheet("表", [10])
    sheet.row([(hostile, BODY)])
    assert load_workbook(io.BytesIO(sheet.save())).active["A1"].value == "甲乙丙丁"
    book = Workbook()
    put(book.active["A1"], hostile)
    saved = io.BytesIO()
    book.save(saved)
    assert load_workbook(io.BytesIO(saved.getvalue())).active["A1"].value == "甲乙丙丁"
