"""``qunmatrix demo``: the whole story on the embedded default (SQLite + the simulated WeChat):
a sample province is loaded, its groups are built, and people talk to the bot in them: help,
join review, a notice relayed down with receipts and progress, a summary."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import typer
from sqlalchemy import select

from bot.cli_app import app, ctx_of, echo, friendly
from bot.cli_roster import tree
from bot.joins import office_contacts
from bot.render import render
from bot.stage import JOIN, Line, Stage
from bot.summary_chat import SummaryOptions
from bot.tables import GROUP, PERSON, POSITION, UNIT
from matrix.db import migrate
from matrix.roster import import_roster, read_roster
from matrix.sample import generate

VISITOR, INTRUDER = "wxid_visitor01", "wxid_visitor02"


@dataclass(frozen=True)
class Cast:
    """Who plays in the story: a county office (admin), two counselors of different schools in
    its group, the province office, and another county's office; with the groups they talk in."""

    county: str
    county_group: str
    admin: str
    teacher: str
    teacher2: str
    province_group: str
    province_admin: str
    other_group: str
    other_admin: str


def _cast(stage: Stage) -> Cast:
    bot, tree_ = stage.bot, stage.bot.tree
    with stage.engine.connect() as conn:
        rooms = {
            (r[0], r[1]): r[2]
            for r in conn.execute(
                select(GROUP.c.unit_code, GROUP.c.kind, GROUP.c.name).where(
                    GROUP.c.room_id.is_not(None), GROUP.c.shard <= 1
                )
            )
        }
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
        school_of = dict(
            conn.execute(
                select(PERSON.c.wechat_id, POSITION.c.unit_code)
                .join(POSITION, POSITION.c.person_id == PERSON.c.id)
                .join(UNIT, UNIT.c.code == POSITION.c.unit_code)
                .where(UNIT.c.parent_code == county, PERSON.c.wechat_id.is_not(None))
            ).all()
        )
        teacher2 = next(
            c for c in room.members if c in school_of and school_of[c] != school_of.get(teacher)
        )
        root_group = rooms[(tree_.root, main[tree_.level(tree_.root)])]
        return Cast(
            county,
            group,
            office_contacts(conn, bot, county)[0],
            teacher,
            teacher2,
            root_group,
            office_contacts(conn, bot, tree_.root)[0],
            rooms[(other, main["county"])],
            office_contacts(conn, bot, other)[0],
        )


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
    """演示：示例省份建库、建群，管理员在模拟微信群里审核入群、下发通知并查看回执、汇总、登记公众号。"""
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
        sim = c.settings.simulated
        with Stage(
            c.engine,
            c.blueprint,
            accounts=tuple(sim.accounts),
            rate=sim.rate,
            burst=sim.burst,
            summaries=replace(SummaryOptions.of(c.settings), export_dir=Path(tmp) / "exports"),
            relay=c.settings.relay,
            timezone=c.settings.timezone,
        ) as stage:
            built = stage.provision()
            echo(render("cli/demo_built.txt.j2", report=built, accounts=sim.accounts))
            cast = _cast(stage)
            g, a = cast.county_group, cast.admin
            _play(stage, "help", [(g, a, "#帮助"), (g, cast.teacher, "#帮助")])
            _play(stage, "join", [(g, VISITOR, JOIN)])
            stage.world.rename(VISITOR, stage.world.contacts[a].name)
            _play(stage, "impostor", [(g, VISITOR, "#同意 1")], admin=stage.world.contacts[a].name)
            _play(stage, "subtree", [(cast.other_group, cast.other_admin, f"#核查 {cast.county}")])
            _play(stage, "approve", [(g, a, "#同意 一"), (g, a, "#同意 1")])
            _play(stage, "reject", [(g, INTRUDER, JOIN), (g, a, "#拒绝 2 非本县教师")])
            _play(stage, "later", [(g, a, "#核查")])
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
