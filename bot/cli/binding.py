"""Commands for identity bindings: ``qunmatrix binding list`` and ``qunmatrix binding revoke``.

A revocation ends the binding at once (the contact has no authority from the next message on)
and queues a message for the person's office in its own group; the running bot sends it, so the
office is told even when the operator revokes with no bot attached.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.app import Context, app, ctx_of, echo, friendly
from bot.render.templates import render
from matrix.errors import MatrixError

if TYPE_CHECKING:  # at run time each command imports what it uses: start-up stays fast
    from sqlalchemy import Connection

    from matrix.provisioning import binding

binding_app = typer.Typer(help="微信绑定：查看、解除名册人员与微信的绑定。", no_args_is_help=True)
app.add_typer(binding_app, name="binding")
ROSTER = "名册（或绑定的微信联系人）"
PHONE_DIGITS = 11


def _unit(conn: Connection, text: str) -> tuple[str, str]:
    """(code, path) of a unit written as its code or its unique name."""
    from matrix.tree import units_by_code_or_name

    rows = units_by_code_or_name(conn, text)
    exact = [r for r in rows if r[0] == text]
    if exact or len(rows) == 1:
        return (exact or rows)[0]
    if rows:
        codes = "、".join(code for code, _ in rows[:5])
        raise MatrixError(f"有多个单位叫“{text}”：{codes}", fix="请改写单位代码")
    raise MatrixError(f"找不到单位“{text}”", fix="请写单位代码或名称，可用 qunmatrix tree 查看")


@binding_app.command("list")
@friendly
def list_(
    ctx: typer.Context,
    unit: Annotated[
        str | None, typer.Option("--unit", "-u", help="只列这个单位及下属单位人员的绑定")
    ] = None,
    person: Annotated[
        str | None, typer.Option("--person", "-p", help="只列这个人（名册上的手机号或姓名）")
    ] = None,
    history: Annotated[bool, typer.Option("--history", help="也列出已替换、已撤销的绑定")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="最多列出几条")] = 200,
) -> None:
    """列出微信绑定：编号、微信、名册人员、单位、方式、状态。"""
    from bot.chat.review import find_person
    from matrix.provisioning import binding
    from matrix.scope import top_unit

    c = ctx_of(ctx)
    with c.ready_engine().connect() as conn:
        code, path = _unit(conn, unit) if unit else (None, None)
        ids = None
        if person:
            ids = [find_person(conn, person, code or top_unit(conn).code, ROSTER).id]
        found = binding.bindings(
            conn, under_path=path, person_ids=ids, history=history, limit=limit + 1
        )
    echo(
        render(
            "cli/bindings.txt.j2",
            bindings=found[:limit],
            more=len(found) > limit,
            history=history,
            limit=limit,
        ).rstrip()
    )


@binding_app.command("revoke")
@friendly
def revoke(
    ctx: typer.Context,
    target: Annotated[
        str,
        typer.Argument(help="绑定编号（见 binding list），或微信联系人 id，或名册上的手机号、姓名"),
    ],
) -> None:
    """解除绑定：该微信立即失去此人的身份和权限；其单位办公室会在本单位群里收到通知。"""
    from bot.chat.relay_runner import relay_env
    from matrix.relay import bind_claims

    c = ctx_of(ctx)
    engine = c.ready_engine()
    env = relay_env(c.settings, engine, c.blueprint)
    with engine.begin() as conn:
        ended = _revoke(conn, c, target)
        told = [
            bind_claims.tell_office(
                conn,
                env,
                b.person_id,
                "revoked",
                contact=b.contact_id,
                path=b.path,
                by=f"运维人员（{c.actor}）",
            )
            for b in ended
        ]
    echo(
        render("cli/binding_revoked.txt.j2", ended=ended, told=[g.name for g in told if g]).rstrip()
    )


def _revoke(conn: Connection, c: Context, target: str) -> list[binding.Binding]:
    from bot.chat.review import find_person
    from matrix.provisioning import binding
    from matrix.scope import top_unit

    # a phone number is digits too, but never as short as a binding number
    if target.isascii() and target.isdigit() and len(target) < PHONE_DIGITS:
        return [binding.revoke(conn, int(target), c.actor)]
    by_contact = binding.bindings(conn, contact_id=target, limit=1)
    if by_contact:
        return [binding.revoke(conn, by_contact[0].id, c.actor)]
    person = find_person(conn, target, top_unit(conn).code, ROSTER)
    return binding.revoke_person(conn, person.id, c.actor)
