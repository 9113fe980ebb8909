"""Commands for the roster and the tree: init, import, tree, sample, blueprint."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.app import app, ctx_of, echo, friendly
from bot.render.templates import render
from matrix.errors import MatrixError

if TYPE_CHECKING:  # at run time each command imports what it uses: start-up stays fast
    from matrix.sample import Scale


@app.command()
@friendly
def init(ctx: typer.Context) -> None:
    """创建或升级数据库（执行全部迁移）。"""
    from matrix.db import migrate

    c = ctx_of(ctx)
    migrate(c.engine)
    echo(f"数据库已就绪：{c.engine.url.render_as_string(hide_password=True)}")


@app.command("import")
@friendly
def import_(
    ctx: typer.Context,
    units: Annotated[
        Path, typer.Argument(help="单位表 .csv/.xlsx：单位代码,单位名称,层级,上级代码")
    ],
    persons: Annotated[
        Path, typer.Argument(help="人员表 .csv/.xlsx：单位代码,姓名,岗位,手机,微信号")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="只显示将要发生的变化，不写入")
    ] = False,
    allow_mass_removal: Annotated[
        bool,
        typer.Option(
            "--allow-mass-removal", help="允许一次删除现有单位或人员的一半以上（默认拒绝）"
        ),
    ] = False,
) -> None:
    """导入名册（全部校验通过才写入；重复导入只应用差异）。"""
    from bot.cli.progress import progress, rows_watched
    from matrix import audit_log
    from matrix.roster import import_roster, read_roster

    c = ctx_of(ctx)
    engine = c.ready_engine()
    with progress() as bar:
        with rows_watched(bar), bar.step("校验名册"):
            roster = read_roster(units, persons, c.blueprint, c.settings.input.limits())
        with bar.step("与数据库比较" if dry_run else "与数据库比较并写入"):
            report = import_roster(
                engine, roster, c.blueprint, dry_run=dry_run, allow_mass_removal=allow_mass_removal
            )
    if not dry_run:
        with engine.begin() as conn:
            audit_log.record(
                conn,
                c.actor,
                "roster.import",
                None,
                units=str(units),
                persons=str(persons),
                **{
                    f"{k}_{kind}": getattr(getattr(report, k), kind)
                    for k in ("units", "persons", "positions")
                    for kind in ("added", "changed", "removed")
                },
            )
    echo(render("cli/import_report.txt.j2", report=report))


@app.command()
@friendly
def tree(
    ctx: typer.Context,
    code: Annotated[str | None, typer.Argument(help="从这个单位开始，默认顶层单位")] = None,
    depth: Annotated[int, typer.Option("--depth", "-d", min=0, help="向下显示几层")] = 2,
) -> None:
    """显示单位树及各层级数量。"""
    c = ctx_of(ctx)
    t = c.tree()
    lines = t.lines(code, depth)
    start = code or t.root
    totals = t.counts_by_level(start)
    labels = {lvl.key: lvl.label for lvl in c.blueprint.levels}
    hidden = sum(totals.values()) - len(lines)
    echo(render("cli/tree.txt.j2", lines=lines, labels=labels, totals=totals, hidden=hidden))


@app.command()
@friendly
def sample(
    ctx: typer.Context,
    scale: Annotated[
        str, typer.Option("--scale", help="county | province | national")
    ] = "province",
    out: Annotated[Path, typer.Option("--out", "-o", help="输出目录")] = Path("sample"),
    seed: Annotated[int, typer.Option("--seed", help="随机种子，相同种子生成相同数据")] = 1,
    root: Annotated[str | None, typer.Option("--root", help="省或县的区划代码，如 230000")] = None,
) -> None:
    """生成示例名册（真实省市县名称 + 生成的学校和人员）。"""
    from bot.cli.progress import progress
    from matrix.sample import generate

    if scale not in ("county", "province", "national"):
        raise MatrixError(f"--scale 不能是 {scale!r}", fix="请用 county、province 或 national")
    scale_: Scale = scale  # type: ignore[assignment]
    c = ctx_of(ctx)
    with progress() as bar:
        units_path, persons_path = generate(
            scale_,
            out,
            seed=seed,
            root=root,
            blueprint=c.blueprint,
            on_step=bar.counter(f"生成示例名册（{scale}）", "个单位"),
        )
    echo(
        render(
            "cli/sample_written.txt.j2",
            units=units_path,
            persons=persons_path,
            blueprint=c.settings.blueprint,
        )
    )


@app.command("blueprint")
@friendly
def blueprint_cmd(
    ctx: typer.Context,
    source: Annotated[
        str | None, typer.Argument(help="蓝图名称或 .toml 文件，默认配置中的蓝图")
    ] = None,
) -> None:
    """校验并显示蓝图：层级、岗位、各级牵头建立的群。"""
    from matrix.blueprint import load_blueprint

    bp = load_blueprint(source) if source else ctx_of(ctx).blueprint
    echo(render("cli/blueprint.txt.j2", bp=bp))
