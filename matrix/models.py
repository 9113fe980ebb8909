"""What the database holds: units, persons and their roles, groups, memberships, the audit log.

Units and persons are never deleted by a roster import, only marked ``removed_at``: a person who
left the roster but is still in a group is a finding (STALE_MEMBER), which needs to know they
were once on it. The audit log is append-only (enforced by database triggers, see migrations).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class Unit(SQLModel, table=True):
    """A node of the tree: a committee office or a school. The roster code is the key."""

    __tablename__ = "unit"
    # summaries count the units of one level under a path prefix (migration 0003)
    __table_args__ = (Index("ix_unit_level_path", "level", "path"),)

    code: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=128)
    level: str = Field(max_length=32, description="blueprint level key")
    depth: int = Field(description="index of the level in the blueprint, 0 = root level")
    parent_code: str | None = Field(default=None, foreign_key="unit.code", index=True)
    # "/11/1101/110101/": subtree = path LIKE prefix, so summaries aggregate in SQL
    path: str = Field(max_length=512, index=True)
    removed_at: datetime | None = None


class Person(SQLModel, table=True):
    """Someone on the roster. ``key`` is how re-imports recognise them (see roster.person_key)."""

    __tablename__ = "person"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=160, unique=True)
    name: str = Field(max_length=64)
    phone: str | None = Field(default=None, max_length=32)
    wechat_id: str | None = Field(default=None, max_length=64, unique=True)
    removed_at: datetime | None = None


class Position(SQLModel, table=True):
    """A role a person holds at a unit (one roster row)."""

    __tablename__ = "position"
    __table_args__ = (
        UniqueConstraint("person_id", "unit_code", "role"),
        Index("ix_position_unit_role", "unit_code", "role"),
        Index("ix_position_role_unit_seq", "role", "unit_code", "seq", "person_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    unit_code: str = Field(foreign_key="unit.code")
    role: str = Field(max_length=32, description="blueprint role key")
    seq: int = Field(default=0, description="row order within the unit, for stable quotas")


class Group(SQLModel, table=True):
    """A WeChat group a unit leads: one blueprint group kind, one shard of it."""

    __tablename__ = "wgroup"  # "group" is an SQL keyword
    __table_args__ = (UniqueConstraint("unit_code", "kind", "shard"),)

    id: int | None = Field(default=None, primary_key=True)
    unit_code: str = Field(foreign_key="unit.code", index=True)
    kind: str = Field(max_length=64, description="blueprint group key")
    shard: int = Field(default=0, description="0 when not split, else 1, 2, … (一群, 二群 …)")
    name: str = Field(max_length=128)
    room_id: str | None = Field(default=None, max_length=128, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    owner_account: str | None = Field(
        default=None, max_length=128, description="the bot account that owns the room"
    )
    adopted_at: datetime | None = Field(
        default=None,
        description="a room built by hand, brought under the bot (认领); None: built by the bot",
    )
    adopted_by: str | None = Field(default=None, max_length=128, description="who adopted it")


class Membership(SQLModel, table=True):
    """One person (or unknown contact) in one group, either expected by the rules or actually
    seen on the platform. ``source`` says where the row came from."""

    __tablename__ = "membership"
    __table_args__ = (
        Index("ix_membership_person", "person_id"),
        # summaries count members per group and state from the index alone (migration 0003)
        Index("ix_membership_group_state", "group_id", "state", "person_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="wgroup.id", index=True)
    state: str = Field(
        max_length=16, description="expected | actual | invited | account (a bot account's seat)"
    )
    person_id: int | None = Field(default=None, foreign_key="person.id")
    contact_id: str | None = Field(default=None, max_length=128, index=True)
    is_admin: bool = False
    nickname: str | None = Field(default=None, max_length=128, description="群昵称")
    source: str = Field(max_length=32, description="blueprint | platform | admin | import")
    updated_at: datetime = Field(default_factory=utcnow)


class MediaAccount(SQLModel, table=True):
    """A website, web page or self-media account a city or county unit registered (seed 000 附表).

    One row per unit and kind; an empty ``value`` means the unit declared it has none (无),
    which the media table shows differently from a unit that has not reported at all."""

    __tablename__ = "media_account"
    __table_args__ = (UniqueConstraint("unit_code", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    unit_code: str = Field(foreign_key="unit.code", max_length=32)
    kind: str = Field(
        max_length=16, description="website | webpage | mp | channels | douyin | kuaishou"
    )
    value: str = Field(default="", max_length=512, description="URL or account name; '' = 无")
    actor: str = Field(max_length=128, description="who registered it: contact id or cli:<user>")
    updated_at: datetime = Field(default_factory=utcnow)


class AuditEntry(SQLModel, table=True):
    """One admin action. Rows are only ever inserted, each chained to the one before it
    (``matrix.audit_chain``): ``id`` counts 1, 2, 3 … from the chain head, ``hash`` covers this
    entry's content and ``prev_hash``."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(max_length=128, description="contact id, or cli:<user> for the operator")
    action: str = Field(max_length=64)
    unit_code: str | None = Field(default=None, max_length=32, index=True)
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    prev_hash: str = Field(max_length=64, description="the previous entry's hash (64 zeros: none)")
    hash: str = Field(max_length=64, description="SHA-256 of this entry, see audit_chain")


class AuditHead(SQLModel, table=True):
    """The audit chain's head: one row, locked by every append, so that appends from several
    processes form one chain; the database refuses to move it except by an append."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    last_id: int = Field(description="the newest entry's id (0: none yet)")
    last_hash: str = Field(max_length=64)
    last_at: datetime = Field(description="the newest entry's time: no later entry is older")
    migrated_id: int = Field(
        default=0, description="entries up to this id were hashed by the migration, as they were"
    )


class ContactBinding(SQLModel, table=True):
    """A WeChat contact id bound to a roster person (see ``matrix.provisioning.binding``). A contact id that
    stops being used (the account reconnected under a new id) is kept, marked ``superseded_at``;
    one an office or the operator ended is kept, marked ``revoked_at``. Only a binding with
    neither carries authority."""

    __tablename__ = "contact_binding"

    id: int | None = Field(default=None, primary_key=True)
    contact_id: str = Field(max_length=128, unique=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    method: str = Field(max_length=16, description="wechat_id | phone | admin")
    actor: str = Field(max_length=128)
    bound_at: datetime = Field(default_factory=utcnow)
    superseded_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = Field(default=None, max_length=128)


class JoinRequest(SQLModel, table=True):
    """Someone who joined a group and is held for an admin's decision (入群审核), or a claim to
    be a roster person with office authority (reason ``claim``), held in the group of the office
    that decides it; ``from_group_id`` is where the claim was made."""

    __tablename__ = "join_request"
    __table_args__ = (Index("ix_join_request_group_contact", "group_id", "contact_id"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="wgroup.id")
    contact_id: str = Field(max_length=128)
    name: str = Field(default="", max_length=128, description="display name, for people only")
    person_id: int | None = Field(default=None, foreign_key="person.id")
    reason: str = Field(max_length=32, description="unknown | not_expected | stale | claim")
    status: str = Field(max_length=16, description="held | approved | rejected | timed_out | left")
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    reminders: int = 0
    decided_at: datetime | None = None
    decided_by: str | None = Field(default=None, max_length=128)
    from_group_id: int | None = Field(default=None, foreign_key="wgroup.id")


class BindAttempt(SQLModel, table=True):
    """One ``#绑定`` by a contact, for the limits per contact and per target person. No phone
    number is kept: the target is the roster person the number named, if any."""

    __tablename__ = "bind_attempt"
    __table_args__ = (
        Index("ix_bind_attempt_contact_at", "contact_id", "at"),
        Index("ix_bind_attempt_person_at", "person_id", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow)
    contact_id: str = Field(max_length=128)
    person_id: int | None = Field(default=None, foreign_key="person.id")
    outcome: str = Field(max_length=16, description="bound | already | pending | refused | limited")


class ProvisionRun(SQLModel, table=True):
    """One apply of a plan. A run left ``open`` (interrupted) is resumed by the next apply."""

    __tablename__ = "provision_run"
    # one open run per scope, even when two bot processes confirm the same plan at once
    __table_args__ = (
        Index(
            "ix_provision_run_open_scope",
            "scope",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=32, description="unit code the plan covers")
    actor: str = Field(max_length=128)
    status: str = Field(max_length=16, description="open | finished")
    days: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class ProvisionStep(SQLModel, table=True):
    """One platform action of a run, in order. ``started`` without ``done`` means the process
    stopped during the call: the resumed apply checks the platform before trying again."""

    __tablename__ = "provision_step"
    __table_args__ = (UniqueConstraint("run_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="provision_run.id", index=True)
    seq: int
    action: str = Field(max_length=16, description="create | rename | remove | invite | set_admin")
    group_id: int = Field(foreign_key="wgroup.id")
    person_id: int | None = Field(default=None, foreign_key="person.id")
    contact_id: str | None = Field(default=None, max_length=128)
    account: str = Field(max_length=128)
    day: int
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    status: str = Field(default="pending", max_length=16, description="pending|started|done|failed")
    error: str | None = Field(default=None, max_length=512)
    done_at: datetime | None = None


# --- same-day relay (notices down, acknowledgements and reports up); see matrix/relay/ ---------


class Notice(SQLModel, table=True):
    """A notice sent down the tree (通知). People type its short id ``T<id>`` (see
    ``matrix.relay.codes``); the text copies and their states are ``Delivery`` rows."""

    __tablename__ = "relay_notice"

    id: int | None = Field(default=None, primary_key=True)
    unit_code: str = Field(foreign_key="unit.code", index=True, description="the issuing unit")
    group_id: int | None = Field(default=None, foreign_key="wgroup.id", description="issued in")
    issuer_contact: str = Field(max_length=128)
    issuer_person_id: int | None = Field(default=None, foreign_key="person.id")
    issuer_name: str = Field(max_length=64)
    body: str = Field(sa_column=Column(Text, nullable=False))
    deadline: datetime
    require_ack: bool = True
    target_groups: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    # its life (migration 0012): held for #确认, scheduled, recurring (a series that makes one
    # notice per occurrence), live, withdrawn, corrected (a correction replaced it), stopped
    state: str = Field(
        default="live",
        max_length=16,
        sa_column_kwargs={"server_default": "live"},
        description="held | scheduled | recurring | live | withdrawn | corrected | stopped",
    )
    send_at: datetime | None = Field(default=None, description="scheduled: when it goes out")
    repeat: str | None = Field(default=None, max_length=32, description="weekly:4:09:00")
    series_id: int | None = Field(
        default=None, foreign_key="relay_notice.id", description="the recurring notice it is of"
    )
    corrects_id: int | None = Field(
        default=None, foreign_key="relay_notice.id", description="the notice it corrects"
    )
    closed_at: datetime | None = Field(default=None, description="withdrawn, corrected, stopped")
    closed_by: str | None = Field(default=None, max_length=128)
    reason: str | None = Field(default=None, max_length=200, description="why it was withdrawn")
    carries_acks: bool = Field(
        default=False,
        sa_column_kwargs={"server_default": "0"},
        description="a correction: the receipts of the notice it corrects count for it",
    )
    # files it carries (migration 0014): JSON, a list of {name, size, path} of the bot's copies
    # (``matrix.relay.attachments``), sent after the text in every group
    files: str = Field(
        default="[]", sa_column=Column(Text, nullable=False, default="[]", server_default="[]")
    )
    announce: bool = Field(
        default=False,
        sa_column_kwargs={"server_default": "0"},
        description="公告: also set as the 群公告 where the bot owns the group",
    )


class Delivery(SQLModel, table=True):
    """One message the bot owes one group: a notice copy, a reminder, an escalation list, a
    forwarded report, a watch-list flag. The state machine is the crash-safety story:
    pending → sending (claimed by one account; its fate is unknown until recorded) → sent, or
    failed. A ``sending`` row whose worker died is sent again with ``resend`` (补发)."""

    __tablename__ = "relay_delivery"
    __table_args__ = (
        Index("ix_relay_delivery_queue", "account_id", "state", "rank", "id"),
        Index("ix_relay_delivery_due", "state", "next_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=96, unique=True, description="what it is, so it is made once")
    kind: str = Field(
        max_length=16, description="notice | file | announce | remind | escalate | report | flag"
    )
    notice_id: int | None = Field(default=None, foreign_key="relay_notice.id", index=True)
    group_id: int = Field(foreign_key="wgroup.id", index=True)
    rank: int = Field(default=0, description="send order: level depth for notices, 0 first")
    account_id: str | None = Field(default=None, max_length=128, description="planned sender")
    state: str = Field(default="pending", max_length=16, description="pending|sending|sent|failed")
    attempts: int = 0
    resend: bool = Field(default=False, description="the next copy is marked 补发")
    next_at: datetime = Field(description="not before (retry backoff)")
    planned_at: datetime = Field(description="when the plan expects it sent (estimates, steals)")
    claimed_by: str | None = Field(default=None, max_length=128)
    claimed_at: datetime | None = None
    message_id: str | None = Field(default=None, max_length=128)
    sent_at: datetime | None = None
    confirmed_at: datetime | None = Field(default=None, description="the platform echoed it")
    tried: str = Field(default="", max_length=512, description="accounts that cannot send here")
    error: str | None = Field(default=None, max_length=512)
    payload: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))


class Acknowledgement(SQLModel, table=True):
    """A unit confirmed a notice (收到). One row per notice and unit."""

    __tablename__ = "relay_ack"
    __table_args__ = (UniqueConstraint("notice_id", "unit_code"),)

    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="relay_notice.id")
    unit_code: str = Field(foreign_key="unit.code")
    group_id: int = Field(foreign_key="wgroup.id")
    person_id: int | None = Field(default=None, foreign_key="person.id")
    contact_id: str = Field(max_length=128)
    at: datetime = Field(default_factory=utcnow)


class RelayJob(SQLModel, table=True):
    """Scheduled work of a notice (a reminder round, the escalation at the deadline), kept in
    the database so that it survives restarts."""

    __tablename__ = "relay_job"
    __table_args__ = (
        UniqueConstraint("notice_id", "kind", "due_at"),
        Index("ix_relay_job_due", "state", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="relay_notice.id")
    kind: str = Field(max_length=16, description="remind | escalate")
    due_at: datetime
    state: str = Field(default="pending", max_length=16, description="pending | done")
    done_at: datetime | None = None


class Form(SQLModel, table=True):
    """A structured return (填报) sent down the tree as a notice. People type its short id
    ``F<id>``; its fields are a JSON list of names, its answers ``FormAnswer`` rows."""

    __tablename__ = "return_form"

    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="relay_notice.id", unique=True, description="it went as")
    unit_code: str = Field(foreign_key="unit.code", index=True, description="the issuing unit")
    title: str = Field(max_length=64)
    fields: str = Field(sa_column=Column(Text, nullable=False), description='["人数", "日期"]')
    deadline: datetime
    issuer_contact: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow)


class FormAnswer(SQLModel, table=True):
    """One unit's answer to a form: the latest wins (``revision`` counts the corrections);
    every answer is in the audit log as well."""

    __tablename__ = "return_answer"
    __table_args__ = (UniqueConstraint("form_id", "unit_code"),)

    id: int | None = Field(default=None, primary_key=True)
    form_id: int = Field(foreign_key="return_form.id")
    unit_code: str = Field(foreign_key="unit.code")
    answers: str = Field(sa_column=Column(Text, nullable=False), description='{"人数": "12"}')
    group_id: int = Field(foreign_key="wgroup.id", description="where it was typed")
    person_id: int | None = Field(default=None, foreign_key="person.id")
    contact_id: str = Field(max_length=128)
    revision: int = 1
    answered_at: datetime = Field(default_factory=utcnow)


class Report(SQLModel, table=True):
    """Information sent up (上报). ``holder_unit`` is the office it has reached; ``#转报``
    passes it one level further up."""

    __tablename__ = "relay_report"

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="wgroup.id", description="where it was typed")
    unit_code: str = Field(foreign_key="unit.code", description="the sender's unit")
    person_id: int | None = Field(default=None, foreign_key="person.id")
    contact_id: str = Field(max_length=128)
    sender_name: str = Field(max_length=64)
    body: str = Field(sa_column=Column(Text, nullable=False))
    notice_id: int | None = Field(default=None, foreign_key="relay_notice.id", index=True)
    holder_unit: str = Field(foreign_key="unit.code", index=True)
    hops: int = 0
    created_at: datetime = Field(default_factory=utcnow)


class SeenRoom(SQLModel, table=True):
    """A room a bot account sits in, as it last listed them, matrix group or not: what
    ``qunmatrix adopt --match`` matches against the expected group names."""

    __tablename__ = "seen_room"

    account_id: str = Field(primary_key=True, max_length=128)
    room_id: str = Field(primary_key=True, max_length=128)
    topic: str = Field(max_length=128)
    member_count: int = 0
    seen_at: datetime = Field(default_factory=utcnow)


class RoomGreeting(SQLModel, table=True):
    """A room outside the matrix where the bot introduced itself: once per room, remembered so
    that a restart does not say it again."""

    __tablename__ = "room_greeting"

    room_id: str = Field(primary_key=True, max_length=128)
    account_id: str = Field(max_length=128)
    greeted_at: datetime = Field(default_factory=utcnow)


class OwnerRequest(SQLModel, table=True):
    """A step the bots have no right to do in an adopted room (remove, set_admin, rename),
    asked of its owner and admins once; kept until a read of the room shows it done."""

    __tablename__ = "owner_request"
    __table_args__ = (Index("ix_owner_request_group", "group_id"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="wgroup.id")
    action: str = Field(max_length=16, description="remove | set_admin | rename")
    person_id: int | None = Field(default=None, foreign_key="person.id")
    contact_id: str | None = Field(default=None, max_length=128)
    name: str | None = Field(default=None, max_length=128, description="rename: the name asked")
    asked_at: datetime = Field(default_factory=utcnow)


class MatchSuggestion(SQLModel, table=True):
    """One numbered suggestion of ``#匹配``: a group's unbound member (contact) and the roster
    person their 群昵称 or WeChat name points to, kept so ``#确认匹配 1,3`` names what was shown.
    A later ``#匹配`` in the group replaces them; they lapse at ``expires_at``. ``number`` is
    None for a member nobody was found for (listed, not confirmable)."""

    __tablename__ = "match_suggestion"
    __table_args__ = (Index("ix_match_suggestion_group_number", "group_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="wgroup.id")
    number: int | None = None
    contact_id: str = Field(max_length=128)
    nickname: str = Field(default="", max_length=64, description="群昵称 as read, clipped")
    name: str = Field(default="", max_length=64, description="WeChat name as read, clipped")
    person_id: int | None = Field(default=None, foreign_key="person.id")
    confidence: str = Field(max_length=16, description="sure | ambiguous | none")
    reason: str = Field(max_length=32)
    office: bool = Field(default=False, description="the person holds office: confirm alone")
    made_by: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    confirmed_at: datetime | None = None
    confirmed_by: str | None = Field(default=None, max_length=128)


class RelayAccount(SQLModel, table=True):
    """A bot account that sends relay messages, and its pacing. Each worker registers itself."""

    __tablename__ = "relay_account"

    account_id: str = Field(primary_key=True, max_length=128)
    rate: float = Field(description="messages per second")
    seen_at: datetime = Field(default_factory=utcnow)
    lost_at: datetime | None = Field(
        default=None, description="when it handed its messages over; None while it serves"
    )
    lost_reason: str | None = Field(
        default=None, max_length=16, description="logged_out | offline | restricted"
    )


class WatchFlag(SQLModel, table=True):
    """A message that matched the watch list (舆情监控); ``notified`` is false when the rate
    limit held the alert back."""

    __tablename__ = "relay_watch_flag"
    __table_args__ = (Index("ix_relay_watch_flag_group_at", "group_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="wgroup.id")
    contact_id: str = Field(max_length=128)
    word: str = Field(max_length=64)
    excerpt: str = Field(max_length=200)
    notified: bool = True
    at: datetime = Field(default_factory=utcnow)


class CommandClaim(SQLModel, table=True):
    """Which bot account answers a message several accounts heard (in one process or in
    several on one database): one row per message fingerprint (room, sender, text; or a room
    event), held by the account that answered the last such message. Another account takes
    it over only once it is older than the claim window; rows older than that are pruned."""

    __tablename__ = "command_claim"
    __table_args__ = (Index("ix_command_claim_at", "at"),)

    fingerprint: str = Field(primary_key=True, max_length=40)
    account: str = Field(max_length=128)
    at: float  # when it was heard, seconds since the epoch (compared across processes)
