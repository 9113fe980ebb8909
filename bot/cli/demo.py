"""``qunmatrix demo``: the whole story on the embedded default (SQLite + the simulated WeChat):
a sample province is loaded, its groups are planned and built through the bot accounts, and
people talk to the bot in them: a new teacher is held and approved (and bound to the roster),
an impostor is refused and removed, a neighbouring county is refused, the county office audits
its group, sends a notice down and follows its receipts, and the province asks for the
county's summary."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from bot.cli.app import app, ctx_of, echo, friendly
from bot.render.templates import render

if TYPE_CHECKING:  # at run time each command imports what it uses: start-up stays fast
    from bot.rehearsal.stage import Line, Stage


VISITOR, INTRUDER = "wxid_visitor01", "wxid_visitor02"
UNNAMED_EVERY = 25  # one member in this many has not yet set the 群昵称 the welcome asked for


@dataclass(frozen=True)
class Cast:
    """Who plays in the story: a county office (admin), two counselors of different schools in
    its group, a counselor of that county who has no 微信号 on the roster (and so was not
    invited), the province office, and another county's office; with the groups they talk in."""

    county: str
    county_group: str
    admin: str
    teacher: str
    teacher2: str
    newcomer: str  # the roster name of the counselor without a 微信号
    newcomer_phone: str
    province_group: str
    province_admin: str
    other_group: str
    other_admin: str


def _cast(stage: Stage, unreachable: set[int]) -> Cast:
    from bot.chat.joins import office_contacts
    from matrix.relay.people import first_with_phone, groups_with_rooms, units_by_wechat_id_under

    bot, tree_ = stage.bot, stage.bot.tree
    with stage.engine.connect() as conn:
        rooms = {(g.unit_code, g.kind): g.name for g in groups_with_rooms(conn) if g.shard <= 1}
        main = {g.led_by: g.key for g in stage.bp.groups if g.main}
        counties = [
            u
            for u in tree_.at_level(tree_.root, "county")
            if (u, main["county"]) in rooms and office_contacts(conn, bot, u)
        ]
        county, other = counties[0], counties[1]
        group = rooms[(county, main["county"])]
        admins = set(office_contacts(conn, bot, county))
        room = stage.world.rooms[stage.room_of(group)]
        teacher = next(c for c in room.members if c not in admins and c not in bot.accounts)
        school_of = units_by_wechat_id_under(conn, county)
        teacher2 = next(
            c for c in room.members if c in school_of and school_of[c] != school_of.get(teacher)
        )
        newcomer = first_with_phone(conn, unreachable, county, "brigade_counselor")
        assert newcomer is not None, "the sample always has counselors without a 微信号"
        root_group = rooms[(tree_.root, main[tree_.level(tree_.root)])]
        return Cast(
            county,
            group,
            office_contacts(conn, bot, county)[0],
            teacher,
            teacher2,
            newcomer[0],
            newcomer[1],
            root_group,
            office_contacts(conn, bot, tree_.root)[0],
            rooms[(other, main["county"])],
            office_contacts(conn, bot, other)[0],
        )


def _set_nicknames(stage: Stage) -> None:
    """Most members do as the welcome asked and set their 群昵称 to 单位-姓名."""
    from matrix.relay.people import unit_names_by_wechat_id

    with stage.engine.connect() as conn:
        units = unit_names_by_wechat_id(conn)
    n = 0
    for room in stage.world.rooms.values():
        for cid in room.members:
            if cid in units:
                n += 1
                if n % UNNAMED_EVERY:
                    room.members[cid] = f"{units[cid]}-{stage.world.contacts[cid].name}"


def _play(stage: Stage, chapter: str, steps: list[tuple[str, str, str]], **extra: object) -> None:
    lines: list[Line] = []
    for group, sender, text in steps:
        lines.extend(stage.say(group, sender, text))
    names = {cid: c.name for cid, c in stage.world.contacts.items()}
    echo(
        render(
            "cli/demo_chapter.txt.j2", chapter=chapter, lines=lines, names=names, **extra
        ).rstrip()
    )


@app.command()
@friendly
def demo(ctx: typer.Context) -> None:
    """演示：示例省份建库，按建群计划在模拟微信中建群，管理员审核陌生人入群、核查、下发通知并查看回执、汇总、登记公众号。"""
    from bot.chat.summary import SummaryOptions
    from bot.cli.console import open_stage
    from bot.cli.roster import tree
    from bot.rehearsal.stage import JOIN
    from bot.render.provision import applied_text
    from matrix.db import migrate
    from matrix.roster import import_roster, read_roster
    from matrix.sample import generate

    c = ctx_of(ctx)
    with tempfile.TemporaryDirectory(prefix="qunmatrix-demo-") as tmp:
        c.settings.db = f"sqlite:///{tmp}/demo.db"
        c.__dict__.pop("engine", None)
        units, persons = generate("province", tmp, seed=1)
        echo(f"$ qunmatrix sample --scale province --out {tmp}")
        migrate(c.engine)
        echo("$ qunmatrix import units.csv persons.csv")
        report = import_roster(c.engine, read_roster(units, persons, c.blueprint), c.blueprint)
        echo(render("cli/import_report.txt.j2", report=report))
        echo("\n$ qunmatrix tree --depth 1")
        ctx.invoke(tree, ctx=ctx, code=None, depth=1)
        exports = SummaryOptions(Path(tmp) / "exports", c.settings.timezone)
        with open_stage(c, exports) as stage:
            echo("\n$ qunmatrix provision")
            built = stage.provision()
            echo(applied_text(built))
            _set_nicknames(stage)
            cast = _cast(stage, {p for g in built.plan.groups for p in g.unreachable})
            stage.world.add_contact(VISITOR, cast.newcomer)
            g, a = cast.county_group, cast.admin
            _play(stage, "help", [(g, a, "#帮助"), (g, cast.teacher, "#帮助")])
            _play(
                stage,
                "join",
                [(g, VISITOR, JOIN), (g, a, "#同意 一"), (g, a, f"#同意 1 {cast.newcomer_phone}")],
                newcomer=cast.newcomer,
            )
            admin_name = stage.world.contacts[a].name
            stage.world.add_contact(INTRUDER, admin_name)  # anyone may pick any name
            _play(
                stage,
                "impostor",
                [(g, INTRUDER, JOIN), (g, INTRUDER, "#同意 2"), (g, a, "#拒绝 2 非本县教师")],
                admin=admin_name,
            )
            _play(stage, "subtree", [(cast.other_group, cast.other_admin, f"#核查 {cast.county}")])
            _play(stage, "audit", [(g, a, "#核查")])
            _play(
                stage,
                "relay",
                [
                    (g, a, "#通知 截止 17:00 请各校于今天17:00前报送少先队建队情况"),
                    (g, cast.teacher, "收到"),
                    (g, cast.teacher2, "收到 T1"),
                    (g, a, "#进度"),
                ],
            )
            county = stage.bot.unit_word(cast.county)
            _play(
                stage,
                "summary",
                [
                    (cast.province_group, cast.province_admin, f"#汇总 {county} xlsx"),
                    (g, a, f"#登记 公众号 {stage.bot.tree.name(cast.county)}少先队"),
                ],
            )
        c.engine.dispose()
