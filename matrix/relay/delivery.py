"""The delivery engine: one worker per bot account sends what the relay owes, under the
account's pacing, and keeps every step in the database so that a crash loses nothing.

A delivery row moves pending → sending → sent (or failed):

- **claim**: in one transaction the worker takes the rows it can send now (its own first, then
  unassigned ones and, when another account is late against the plan, that account's), marking
  them ``sending`` under its name. On PostgreSQL the rows are picked ``FOR UPDATE SKIP LOCKED``
  and the update re-checks ``state = 'pending'``, so two workers never take the same row.
- **send** through the platform port. The send's message id, or the platform's echo of the
  bot's own message (``IncomingMessage.is_self``), confirms the copy; results are written in one
  transaction per batch.
- **after a crash** a ``sending`` row's fate is unknown: the restarted worker (or any worker, once
  the lease is over) queues it again with ``resend``, and the copy says 补发. Duplicates can only
  happen in that window, and they are marked.
- **disconnected is not failed**: while the account's platform is not connected (its
  ``presence``, or a call that raised ``Disconnected``) nothing is tried and no attempt is
  spent; nothing reached the room, so no 补发 either. On reconnect the account's waiting copies
  go out at once, whatever backoff they were sitting out.
- **failures** (from a connected platform): a rate limit waits and tries again; a retryable
  error backs off exponentially (the call started and its fate is unknown, so the retry is a
  补发 unless the echo arrives first); a permanent error hands the group to another account that
  is in it, else marks it failed. One bad group never holds up the rest. A copy failed for good
  is a WARNING in the log and a message to the notice's issuing group.
- **losing the account**: one that logs out, stays offline ``offline_handover_seconds`` or
  fails ``restricted_after_failures`` sends in a row hands its pending copies over
  (``matrix.relay.handover``).

Texts come from templates through ``compose`` (the bot passes its renderer), so the core never
writes Chinese sentences itself.
"""

from __future__ import annotations

import asyncio
import json
import random
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from loguru import logger
from sqlalchemy import Connection, Engine, any_, bindparam, func, or_, select, text, update

from matrix.bulk import update_each
from matrix.platform import (
    Disconnected,
    IncomingMessage,
    Platform,
    PlatformError,
    Presence,
    RateLimited,
    Room,
)
from matrix.relay.accounts import (
    ACCOUNT_SEAT,
    accounts_in_groups,
    register_account,
    restore,
    serving_rates,
)
from matrix.relay.attachments import copy_of, notice_files
from matrix.relay.clock import Clock, VirtualClock
from matrix.relay.codes import notice_code
from matrix.relay.env import RelayEnv
from matrix.relay.handover import HandOver, hand_over
from matrix.relay.outbox import QUEUE_BURST, Outbox
from matrix.relay.people import group
from matrix.relay.recall import look, prepared, still_wanted
from matrix.tables import DELIVERY, FORM, GROUP, MEMBERSHIP, NOTICE, UNIT

Compose = Callable[[str, dict[str, Any]], str]  # (template name, context) -> text
Faults = Callable[[str], None]  # called at named points; tests raise there to simulate a crash
NOTICE_TEMPLATE = "relay/notice.j2"
_FAILED_TEMPLATES = {  # what the issuing group is told of a message of the notice given up
    "notice": "relay/copy_failed.j2",
    "file": "relay/file_failed.j2",
    "announce": "relay/announce_failed.j2",
}
_EPS = 1e-9
_T = TypeVar("_T")
_ECHO_MEMORY = 4096  # recent sends whose late echo can still confirm them
_CLAIMED = (  # a claimed row as ``Claimed`` holds it
    DELIVERY.c.id,
    DELIVERY.c.kind,
    DELIVERY.c.notice_id,
    DELIVERY.c.group_id,
    GROUP.c.room_id,
    GROUP.c.name.label("group_name"),
    DELIVERY.c.resend,
    DELIVERY.c.attempts,
    DELIVERY.c.tried,
    DELIVERY.c.payload,
)


class Pacer:
    """A token bucket with jitter: ``burst`` messages at once, then one per ``1/rate`` seconds
    on average, each gap stretched or shrunk by up to ``jitter`` so the account does not tick
    like a machine. ``rate`` 0 means unpaced.

    >>> p = Pacer(rate=2.0, burst=1, jitter=0.0, rng=random.Random(1), now=0.0)
    >>> p.allowance(0.0), p.take(), p.wait(0.0), p.allowance(0.5)
    (1, None, 0.5, 1)
    """

    def __init__(
        self, *, rate: float, burst: int, jitter: float, rng: random.Random, now: float
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.jitter = jitter
        self.rng = rng
        self.tokens = float(burst)
        self.stamp = now

    @property
    def paced(self) -> bool:
        """False when pacing is off."""
        return self.rate > 0

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def allowance(self, now: float, most: int = 1_000_000) -> int:
        """How many messages may go out now."""
        if not self.paced:
            return most if now >= self.stamp else 0
        self._refill(now)
        return min(most, int(self.tokens + _EPS))

    def wait(self, now: float) -> float:
        """Seconds until the next message may go out."""
        if not self.paced:
            return max(0.0, self.stamp - now)  # only a hold() stops an unpaced account
        self._refill(now)
        return max(0.0, (1.0 - self.tokens) / self.rate) if self.tokens < 1 - _EPS else 0.0

    def take(self) -> None:
        """One message went out."""
        if self.paced:
            self.tokens -= 1.0 + self.rng.uniform(-self.jitter, self.jitter)

    def hold(self, now: float, seconds: float) -> None:
        """The platform said slow down: nothing goes out for ``seconds``."""
        if self.paced:
            self._refill(now)
            self.tokens = min(self.tokens, 0.0) - seconds * self.rate
        else:
            self.stamp = now + seconds


@dataclass
class Claimed:
    """A row this worker has taken, with what it needs to send it."""

    id: int
    kind: str
    notice_id: int | None
    group_id: int
    room_id: str
    group_name: str
    resend: bool
    attempts: int
    tried: str
    payload: str


@dataclass(frozen=True)
class NoticeCard:
    """A notice as every copy shows it (the context of ``relay/notice.j2``)."""

    code: str
    unit_name: str
    issuer_name: str
    body: str
    deadline: datetime
    require_ack: bool
    corrects: str | None = None  # a correction: the code of the notice it corrects
    carries_acks: bool = False  # and the receipts of that one count for it
    form: str | None = None  # the form (填报, ``matrix.returns``) it carries: answered by #填
    files: tuple[str, ...] = ()  # the names of the files that follow the text


class DeliveryWorker:
    """Sends one bot account's share of the relay. Call ``start`` once, feed ``observe`` the
    account's incoming messages (it only looks at echoes), and call ``run_once`` whenever the
    previous call said to (``drive`` does that)."""

    def __init__(
        self,
        env: RelayEnv,
        platform: Platform,
        compose: Compose,
        *,
        faults: Faults | None = None,
        seed: int | None = None,
    ) -> None:
        self.env = env
        self.platform = platform
        self.account = platform.account_id
        self.compose = compose
        self.faults = faults or (lambda point: None)
        opts = env.options
        self.pacer = Pacer(
            rate=opts.rate,
            burst=opts.burst,
            jitter=opts.jitter,
            rng=random.Random(seed if seed is not None else zlib.crc32(self.account.encode())),
            now=env.clock(),
        )
        self._cards: dict[int, NoticeCard] = {}
        self._notice_texts: dict[tuple[int, bool], str] = {}  # by (notice, 补发)
        self._inflight: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._results: dict[int, dict[str, Any]] = {}
        self._late_echoes: dict[int, dict[str, Any]] = {}
        self._lease_checked = float("-inf")
        self._gave_up: list[tuple[Claimed, str]] = []
        self._texts_sent: set[tuple[int | None, int]] = set()  # (notice, group) sent this batch
        self.sent = 0
        self.pace_bound = False  # whether the last wait was the pacing's (firm) or the queue's
        # presence: since when the platform is away (monotonic), why the account is out of
        # service (a ``handover.REASONS``), failed sends in a row on a connected platform
        self.away = False  # the last wait was for the platform to come back
        self._away_since: float | None = None
        self._away_told = False  # the log said this outage holds messages back
        self._hint_until = float("-inf")  # a call said Disconnected before presence did
        self.lost: str | None = None
        self._rest_until = float("-inf")
        self._strikes = 0
        # taking the account out of service and back runs in threads, one at a time in the
        # order the loop asked for them, so the database ends as the last presence says
        self._standing: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self.on_lost: list[Callable[[HandOver], None]] = []  # hears every hand-over
        platform.on_presence(self.presence_changed)

    # --- life cycle ---------------------------------------------------------------------------

    async def start(self, rooms: list[Room] | None = None) -> int:
        """Register the account and the groups it is in (``rooms``, else asked of the
        platform), and queue again whatever a previous run of this account left half-done.
        Returns how many rows were taken back."""
        if rooms is None:
            rooms = await self.platform.list_rooms()
        await self.register([r.room_id for r in rooms])
        return await asyncio.to_thread(self.recover)

    async def register(self, room_ids: list[str]) -> None:
        """Record the account, its pace and the groups it is in. A login puts a lost account
        back into service, but only while it is still online and not resting from a
        restriction; in turn with hand-overs, so a log-out heard meanwhile is not undone."""
        async with self._turn():
            serves = self.platform.presence is Presence.ONLINE and self.lost != "restricted"
            out_for = None if serves else (self.lost or "offline")
            await _to_the_end(self._register, room_ids, out_for)

    def _register(self, room_ids: list[str], out_for: str | None) -> None:
        with self.env.engine.begin() as conn:
            register_account(
                conn,
                self.account,
                self.env.options.rate,
                room_ids,
                self.env.clock.now(),
                out_for=out_for,
            )

    def recover(self) -> int:
        """Rows this account had claimed but not recorded: their fate is unknown, so they go
        out again marked 补发."""
        with self.env.engine.begin() as conn:
            return int(
                conn.execute(
                    update(DELIVERY)
                    .where(DELIVERY.c.state == "sending", DELIVERY.c.claimed_by == self.account)
                    .values(state="pending", resend=True, claimed_by=None)
                ).rowcount
            )

    # --- presence -----------------------------------------------------------------------------

    async def presence_changed(self, presence: Presence) -> None:
        """The platform's presence changed: back online, the account's waiting copies are due
        now and a lost account serves again; logged out, it is lost at once."""
        if presence is not Presence.ONLINE:
            if self._away_since is None:
                self._away_since = self.env.clock()
            if presence is Presence.LOGGED_OUT and self.lost is None:
                await self._lose("logged_out")
            return
        away, self._away_since = self._away_since, None
        self._away_told = False
        self._hint_until = float("-inf")
        self._strikes = 0
        if self.lost == "restricted" and self.env.clock() < self._rest_until:
            return  # a reconnect does not cut a restricted account's rest short
        async with self._turn():
            if self.platform.presence is not Presence.ONLINE:
                return  # gone again while it waited: the hand-over heard since stands
            back = await _to_the_end(self._come_back, self.env.clock.now())
            if back or self.lost:
                logger.info("机器人账号 {} 恢复服务，继续发送通知", self.account)
            self.lost = None
        if away is not None:
            self.pacer.hold(self.env.clock(), 0.0)  # pacing starts afresh, no stale tokens

    def _come_back(self, now: datetime) -> bool:
        """The account serves again; its copies whose backoff began before or during the
        outage need not sit it out. Returns whether it had been taken off any group."""
        with self.env.engine.begin() as conn:
            back = restore(conn, self.account)
            conn.execute(
                update(DELIVERY)
                .where(
                    DELIVERY.c.account_id == self.account,
                    DELIVERY.c.state == "pending",
                    DELIVERY.c.next_at > now,
                )
                .values(next_at=now)
            )
        return bool(back)

    async def _while_away(self, mono: float) -> tuple[bool, float | None]:
        """The platform is not connected: send nothing; once it has been away too long, hand
        the account's copies over. Returns ``run_once``'s answer."""
        self.away = True
        self.pace_bound = False
        if self._away_since is None:
            self._away_since = mono
        if self.lost is not None:
            return False, None
        away_for = mono - self._away_since
        limit = self.env.options.offline_handover_seconds
        if self.platform.presence is Presence.LOGGED_OUT or away_for + _EPS >= limit:
            logged_out = self.platform.presence is Presence.LOGGED_OUT
            if await self._lose("logged_out" if logged_out else "offline", away_for):
                return True, None
            return False, 0.0  # back online while it waited for its turn: look again
        if not self._away_told:
            await asyncio.to_thread(self._tell_waiting)
        hint = self._hint_until - mono
        return False, min(limit - away_for, hint) if hint > 0 else limit - away_for

    def _tell_waiting(self) -> None:
        with self.env.engine.connect() as conn:
            waiting = conn.execute(
                select(func.count()).where(
                    DELIVERY.c.account_id == self.account, DELIVERY.c.state == "pending"
                )
            ).scalar_one()
        if waiting:
            self._away_told = True
            logger.info(
                "机器人账号 {} 未连接：{} 条消息等连接恢复后发送（不计为发送失败）",
                self.account,
                waiting,
            )

    async def _lose(self, reason: str, away_for: float = 0.0) -> bool:
        """Take the account out of service and hand its copies over; False when it came
        back online while this waited for its turn, and so stays in service."""
        seen = self.platform.presence
        self.lost = reason  # before waiting for the turn: nothing else starts a hand-over
        if reason == "restricted":
            self._rest_until = self.env.clock() + self.env.options.restricted_rest_seconds
        async with self._turn():
            if seen is not Presence.ONLINE and self.platform.presence is Presence.ONLINE:
                self.lost = None
                return False
            self.lost = reason  # a return to service waited on may have cleared it
            # a national hand-over rewrites thousands of rows: the chat goes on meanwhile
            result = await _to_the_end(
                hand_over, self.env, self.account, reason, offline_for=away_for
            )
        if result.happened:  # else another worker or process had handed it over already
            for hook in self.on_lost:
                hook(result)
        return True

    def _turn(self) -> asyncio.Lock:
        """The lock that orders this account's hand-overs and returns (one per event loop:
        an asyncio lock belongs to the loop it first waited in)."""
        loop = asyncio.get_running_loop()
        if self._standing is None or self._standing[0] is not loop:
            self._standing = (loop, asyncio.Lock())
        return self._standing[1]

    # --- echoes -------------------------------------------------------------------------------

    async def observe(self, msg: IncomingMessage) -> None:
        """Confirm a copy by the platform's echo of it."""
        if not msg.is_self:
            return
        delivery_id = self._inflight.pop((msg.room_id, msg.text), None)
        if delivery_id is None:
            return
        now = self.env.clock.now()
        if delivery_id in self._results:
            result = self._results[delivery_id]
            result.update(confirmed_at=now, message_id=msg.message_id)
            if result.get("state") in ("pending", "failed"):
                self._went_out(delivery_id, result, now)
        else:
            # after its batch was written: a late echo (or one for a copy queued for retry)
            self._late_echoes[delivery_id] = {"message_id": msg.message_id, "confirmed_at": now}

    def _went_out(self, delivery_id: int, result: dict[str, Any], now: datetime) -> None:
        # the send reported an error but its echo came before the batch was written: the copy
        # is in the room, so it is sent, and neither retried as 补发 nor handed over or given up
        for key in ("next_at", "resend", "error", "account_id", "tried"):
            result.pop(key, None)
        result.update(state="sent", sent_at=now)
        self._gave_up = [(row, error) for row, error in self._gave_up if row.id != delivery_id]
        self.sent += 1
        self._strikes = 0  # the account does send: the error was no failure to count

    # --- one step -----------------------------------------------------------------------------

    async def run_once(self) -> tuple[bool, float | None]:
        """Send what may go out now. Returns whether anything was done, and the seconds until
        this worker should run again (None: nothing left that it knows of)."""
        opts = self.env.options
        mono = self.env.clock()
        if self.platform.presence is not Presence.ONLINE or mono < self._hint_until:
            return await self._while_away(mono)
        self.away = False
        self._away_since = None
        if self.lost == "restricted":
            if mono < self._rest_until:
                self.pace_bound = False
                return False, self._rest_until - mono
            async with self._turn():
                await _to_the_end(self._restore)
                self.lost = None
            self._strikes = 0
            logger.info("机器人账号 {} 结束限制休息，继续发送", self.account)
        wait = self.pacer.wait(mono)
        self.pace_bound = True
        if wait > 0:
            return False, wait
        want = self.pacer.allowance(mono, opts.claim_batch)
        claimed = await asyncio.to_thread(self._claim, want)
        self.faults("claimed")
        self._texts_sent.clear()
        did = bool(claimed) or bool(self._late_echoes)
        for i, row in enumerate(claimed):
            if not await self._send(row):
                self._release(claimed[i + 1 :])
                break
        await self._flush()
        self.faults("flushed")
        if self._strikes >= opts.restricted_after_failures and self.lost is None:
            await self._lose("restricted")
            return True, self._rest_until - self.env.clock()
        if mono < self._hint_until:  # the platform went away mid-batch
            return did, self._hint_until - mono
        if len(claimed) == want:
            return did, self.pacer.wait(self.env.clock())
        self.pace_bound = False  # the wait is only a guess from the queue as it stands
        return did, await asyncio.to_thread(self._next_due)

    async def _send(self, row: Claimed) -> bool:
        """Send one copy; False when the platform asked to slow down."""
        now = self.env.clock.now()
        if not await prepared(self.env, self.platform, row):  # a withdrawal's recall
            self._results[row.id] = {"state": "withdrawn"}
            return True
        if row.kind == "file":
            return await self._send_file(row, now)
        self._results[row.id] = {}
        self.faults("before_send")
        wanted = look(self.env, row)  # withdrawn since it was queued? asked now, read below
        try:
            text = self._text(row)
        except Exception as exc:  # a broken template or payload fails this row, not the worker
            self._results[row.id] = {
                "state": "failed",
                "error": f"{type(exc).__name__}: {exc}"[:500],
            }
            return True
        extra = json.loads(row.payload) if row.kind != "notice" else {}
        mentions = tuple(extra.get("mentions", ()))
        direct = str(extra.get("to", ""))  # a private message (a report to an office's staff)
        if not wanted():  # the last look, just before the send
            self._results[row.id] = {"state": "withdrawn"}
            return True
        self._inflight[(row.room_id, text)] = row.id
        while len(self._inflight) > _ECHO_MEMORY:
            self._inflight.popitem(last=False)
        try:
            if direct:
                message_id = await self.platform.send_direct(direct, text)
            elif row.kind == "announce":  # the 群公告: no message, nothing to echo
                self._inflight.pop((row.room_id, text), None)
                await self.platform.set_announcement(row.room_id, text)
                message_id = ""
            else:
                message_id = await self.platform.send_text(row.room_id, text, mentions)
        except (RateLimited, Disconnected) as exc:
            self._inflight.pop((row.room_id, text), None)
            return self._not_sent(row, exc)
        except Exception as exc:
            await self._failed(row, _failure(exc), now)
        else:
            result = self._results[row.id]
            result.setdefault("message_id", message_id)
            result.update(state="sent", sent_at=now)
            if row.kind == "notice":  # its files may follow in this batch
                self._texts_sent.add((row.notice_id, row.group_id))
            self.sent += 1
            self._strikes = 0
        self.pacer.take()
        self.faults("after_send")
        return True

    async def _send_file(self, row: Claimed, now: datetime) -> bool:
        """Send one file of a notice, once the notice's text has gone to that group; written
        as sent at once, so a crash after it cannot send it twice."""
        assert row.notice_id is not None
        copy: str | None = "sent"  # the text went earlier in this batch (not written yet)
        due: datetime | None = None
        if (row.notice_id, row.group_id) not in self._texts_sent:
            with self.env.engine.connect() as conn:
                copy, due = copy_of(conn, row.notice_id, row.group_id)
        if copy in ("pending", "sending"):  # the text is not there yet: the file waits for it
            wait = max(now + timedelta(seconds=1), due or now)
            self._results[row.id] = {
                "state": "pending",
                "attempts": row.attempts - 1,
                "next_at": wait,
            }
            return True
        self.faults("before_send")
        if copy != "sent" or not still_wanted(self.env, row):
            gone = copy in ("withdrawn", "sent", None)
            self._results[row.id] = (
                {"state": "withdrawn"}
                if gone
                else {
                    "state": "failed",
                    "error": "通知正文未能送达，附件不再发送",
                }
            )
            return True
        path = str(json.loads(row.payload)["path"])
        self._results[row.id] = {}
        try:
            message_id = await self.platform.send_file(row.room_id, path)
        except (RateLimited, Disconnected) as exc:
            return self._not_sent(row, exc)
        except Exception as exc:
            await self._failed(row, _failure(exc), now)
        else:
            self._results[row.id].update(state="sent", sent_at=now, message_id=message_id)
            self.sent += 1
            self._strikes = 0
        await self._flush()
        self.pacer.take()
        self.faults("after_send")
        return True

    def _not_sent(self, row: Claimed, exc: PlatformError) -> bool:
        """Nothing was sent (slow down, or not connected): the row goes back as it was, no
        attempt spent, no 补发. Returns ``_send``'s False."""
        self._results.pop(row.id)
        self._release([row])
        if isinstance(exc, RateLimited):
            self.pacer.hold(self.env.clock(), exc.retry_after)
        else:
            self._hint_until = self.env.clock() + self.env.options.idle_poll_seconds
        return False

    def _text(self, row: Claimed) -> str:
        if row.kind == "notice":
            assert row.notice_id is not None
            # one notice reads the same in every group: composed once per notice (and once
            # more as 补发), not once per copy (a tenth of a millisecond each, 11,000 times)
            key = (row.notice_id, row.resend)
            if (text := self._notice_texts.get(key)) is None:
                text = self._notice_texts[key] = self._notice_text(row.notice_id, row.resend)
            return text
        payload = json.loads(row.payload)
        context = dict(payload.get("context", {}))
        for key in payload.get("times", ()):
            *outer, last = key.split(".")
            holder = context
            for part in outer:
                inner = dict(holder[part])
                holder[part] = inner
                holder = inner
            holder[last] = self.env.local(datetime.fromisoformat(holder[last]))
        context.update(group_name=row.group_name, resend=row.resend)
        return self.compose(payload["template"], context)

    def _notice_text(self, notice_id: int, resend: bool) -> str:
        card = self._card(notice_id)
        context: dict[str, Any] = {
            "code": card.code,
            "unit_name": card.unit_name,
            "issuer_name": card.issuer_name,
            "body": card.body,
            "deadline": card.deadline,
            "require_ack": card.require_ack,
            "corrects": card.corrects,
            "carries_acks": card.carries_acks,
            "form": card.form,
            "files": card.files,
            "resend": resend,
        }
        return self.compose(NOTICE_TEMPLATE, context)

    def _card(self, notice_id: int) -> NoticeCard:
        card = self._cards.get(notice_id)
        if card is None:
            with self.env.engine.connect() as conn:
                form = select(FORM.c.id).where(FORM.c.notice_id == NOTICE.c.id).scalar_subquery()
                r = conn.execute(
                    select(NOTICE, UNIT.c.name.label("unit_name"), form.label("form_id"))
                    .join(UNIT, UNIT.c.code == NOTICE.c.unit_code)
                    .where(NOTICE.c.id == notice_id)
                ).one()
            card = NoticeCard(
                notice_code(r.id),
                r.unit_name,
                r.issuer_name,
                r.body,
                self.env.local(r.deadline),
                r.require_ack,
                notice_code(r.corrects_id) if r.corrects_id else None,
                r.carries_acks,
                f"F{r.form_id}" if r.form_id is not None else None,
                tuple(f.name for f in notice_files(r.files)),
            )
            self._cards[notice_id] = card
        return card

    async def _failed(self, row: Claimed, exc: PlatformError, now: datetime) -> None:
        opts = self.env.options
        result = self._results[row.id]
        if "confirmed_at" in result:  # the echo came although the call failed: it went out
            self._went_out(row.id, result, now)
            return
        error = str(exc)[:500]
        if exc.retryable:
            self._strikes += 1
            if row.attempts >= opts.max_attempts:
                result.update(state="failed", error=error)
                self._gave_up.append((row, error))
                return
            delay = min(opts.retry_max_seconds, opts.retry_base_seconds * 2 ** (row.attempts - 1))
            # the copy may have reached the room before the error: a retry is a 补发
            result.update(
                state="pending", next_at=now + timedelta(seconds=delay), resend=True, error=error
            )
            return
        tried = [a for a in row.tried.split(",") if a] + [self.account]
        holders = await asyncio.to_thread(self._holders, row.group_id)
        if "confirmed_at" in result:  # its echo came meanwhile
            self._went_out(row.id, result, now)
            return
        others = [a for a in holders if a not in tried]
        if others:
            result.update(
                state="pending", account_id=others[0], tried=",".join(tried)[:500], error=error
            )
        else:
            result.update(state="failed", tried=",".join(tried)[:500], error=error)
            self._gave_up.append((row, error))

    # --- the database -------------------------------------------------------------------------

    def _restore(self) -> None:
        with self.env.engine.begin() as conn:
            restore(conn, self.account)

    def _holders(self, group_id: int) -> list[str]:
        """The serving accounts in the group."""
        with self.env.engine.connect() as conn:
            return accounts_in_groups(conn, serving_rates(conn), [group_id]).get(group_id, [])

    def _claim(self, want: int) -> list[Claimed]:
        opts = self.env.options
        now = self.env.clock.now()
        mono = self.env.clock()
        with self.env.engine.begin() as conn:
            if mono - self._lease_checked >= opts.lease_seconds / 4:
                self._lease_checked = mono
                expire_leases(conn, now - timedelta(seconds=opts.lease_seconds))
            own = DELIVERY.c.account_id == self.account
            mine = select(MEMBERSHIP.c.group_id).where(
                MEMBERSHIP.c.state == ACCOUNT_SEAT, MEMBERSHIP.c.contact_id == self.account
            )
            late = now - timedelta(seconds=opts.steal_after_seconds)
            others = or_(
                DELIVERY.c.account_id.is_(None),
                (DELIVERY.c.account_id != self.account) & (DELIVERY.c.planned_at <= late),
            ) & DELIVERY.c.group_id.in_(mine)
            if conn.dialect.name == "postgresql":
                rows = self._take(conn, own, want, now)
                if len(rows) < want:
                    rows += self._take(conn, others, want - len(rows), now)
                rows.sort(key=lambda r: (r.rank, r.id))
                return [
                    Claimed(**{k: v for k, v in r._mapping.items() if k != "rank"}) for r in rows
                ]
            ids = self._pick(conn, own, want, now)
            if len(ids) < want:
                ids += self._pick(conn, others, want - len(ids), now)
            if not ids:
                return []
            taken = [
                r.id
                for r in conn.execute(
                    update(DELIVERY)
                    .where(DELIVERY.c.id.in_(ids), DELIVERY.c.state == "pending")
                    .values(self._taking(now))
                    .returning(DELIVERY.c.id)
                )
            ]
            picked = conn.execute(
                select(*_CLAIMED)
                .join(GROUP, GROUP.c.id == DELIVERY.c.group_id)
                .where(DELIVERY.c.id.in_(taken))
                .order_by(DELIVERY.c.rank, DELIVERY.c.id)
            ).all()
        return [Claimed(**r._mapping) for r in picked]

    def _taking(self, now: datetime) -> dict[str, Any]:
        """What a claim writes on each row it takes."""
        return {
            "state": "sending",
            "claimed_by": self.account,
            "claimed_at": now,
            "attempts": DELIVERY.c.attempts + 1,
        }

    def _take(self, conn: Connection, which: Any, limit: int, now: datetime) -> list[Any]:
        """PostgreSQL: pick, lock and mark the next rows in one statement (one round trip
        instead of three). The pick skips rows another worker has locked, and the update
        re-checks ``state = 'pending'``, so two workers never take the same row."""
        picked = (
            select(DELIVERY.c.id)
            .where(which, DELIVERY.c.state == "pending", DELIVERY.c.next_at <= now)
            .order_by(DELIVERY.c.rank, DELIVERY.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        # ``id = ANY(ARRAY(…))``, not a join with the picked ids: a join let the planner scan
        # the whole queue (it did, at 11,000 rows queued: 4 ms of the 5 a claim took)
        return list(
            conn.execute(
                update(DELIVERY)
                .where(
                    DELIVERY.c.id == any_(func.array(picked)),
                    DELIVERY.c.state == "pending",
                    GROUP.c.id == DELIVERY.c.group_id,
                )
                .values(self._taking(now))
                .returning(*_CLAIMED, DELIVERY.c.rank)
            )
        )

    @staticmethod
    def _pick(conn: Connection, which: Any, limit: int, now: datetime) -> list[int]:
        query = (
            select(DELIVERY.c.id)
            .where(which, DELIVERY.c.state == "pending", DELIVERY.c.next_at <= now)
            .order_by(DELIVERY.c.rank, DELIVERY.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(conn.execute(query).scalars())

    def _release(self, rows: Sequence[Claimed]) -> None:
        """Give back claimed rows that were not tried (the platform asked to slow down)."""
        for row in rows:
            self._results[row.id] = {"state": "pending", "attempts": row.attempts - 1}

    async def _flush(self) -> None:
        """Write the batch's outcomes in one transaction, in a thread: the event loop (the
        chat, the other accounts) goes on meanwhile. An echo that comes then is one for a row
        already on its way to the database, so it is kept for the next write; outcomes that
        could not be written are kept for it too."""
        if not self._results and not self._late_echoes:
            return
        batch = (self._results, self._late_echoes, self._gave_up)
        self._results, self._late_echoes, self._gave_up = {}, {}, []
        try:
            await asyncio.to_thread(self._write, *batch)
        except asyncio.CancelledError:
            raise  # the thread goes on with the write: the batch is its now
        except BaseException:
            results, late, gave_up = batch
            self._results = results | self._results
            self._late_echoes = late | self._late_echoes
            self._gave_up = gave_up + self._gave_up
            raise

    def _write(
        self,
        results: dict[int, dict[str, Any]],
        late_echoes: dict[int, dict[str, Any]],
        gave_up: list[tuple[Claimed, str]],
    ) -> None:
        fields = {"state", "message_id", "sent_at", "confirmed_at", "next_at", "resend"}
        fields |= {"error", "account_id", "tried", "attempts"}
        with self.env.engine.begin() as conn:
            by_shape: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
            for delivery_id, result in results.items():
                if not result:  # a send cut short before anything was known: stays ``sending``
                    continue
                shape = tuple(sorted(k for k in result if k in fields))
                by_shape.setdefault(shape, []).append((delivery_id, *(result[k] for k in shape)))
            for shape, rows in by_shape.items():  # one statement per shape (PostgreSQL)
                update_each(
                    conn,
                    DELIVERY,
                    rows,
                    shape,
                    also={"claimed_by": None},
                    only_if={"claimed_by": self.account},
                )
            if late_echoes:
                conn.execute(
                    update(DELIVERY)
                    .where(
                        DELIVERY.c.id == bindparam("_id"), DELIVERY.c.state.in_(("pending", "sent"))
                    )
                    .values(
                        state="sent",
                        claimed_by=None,
                        message_id=func.coalesce(DELIVERY.c.message_id, bindparam("v_message_id")),
                        sent_at=func.coalesce(DELIVERY.c.sent_at, bindparam("v_confirmed_at")),
                        confirmed_at=bindparam("v_confirmed_at"),
                    ),
                    [
                        {
                            "_id": k,
                            "v_message_id": v["message_id"],
                            "v_confirmed_at": v["confirmed_at"],
                        }
                        for k, v in late_echoes.items()
                    ],
                )
            if gave_up:
                self._report_failures(conn, gave_up)
            self.faults("flushing")

    def _report_failures(self, conn: Connection, gave_up: list[tuple[Claimed, str]]) -> None:
        """Nothing fails silently: each copy given up is a WARNING, and a notice's copy is also
        told to the group the notice was issued in."""
        outbox = Outbox(conn, self.env)
        for row, error in gave_up:
            logger.warning(
                "消息未能送达，已放弃：{} 第 {} 号（{}，群“{}”，已试 {} 次）：{}",
                row.kind,
                row.id,
                notice_code(row.notice_id) if row.notice_id else "-",
                row.group_name,
                row.attempts,
                error,
            )
            if row.kind not in _FAILED_TEMPLATES or row.notice_id is None:
                continue
            issued_in = conn.execute(
                select(NOTICE.c.group_id).where(NOTICE.c.id == row.notice_id)
            ).scalar()
            if issued_in is None:
                continue
            outbox.add(
                key=f"failed:{row.id}",
                kind="alert",
                group=group(conn, issued_in),
                notice_id=row.notice_id,
                template=_FAILED_TEMPLATES[row.kind],
                context={
                    "code": notice_code(row.notice_id),
                    "group": row.group_name,
                    "attempts": row.attempts,
                    "error": error,
                    "file": json.loads(row.payload).get("name", "") if row.kind == "file" else "",
                },
            )
        outbox.flush()

    def _next_due(self) -> float | None:
        """Seconds until this worker has something to send again, None if nothing is queued
        that it could send."""
        opts = self.env.options
        mine = select(MEMBERSHIP.c.group_id).where(
            MEMBERSHIP.c.state == ACCOUNT_SEAT, MEMBERSHIP.c.contact_id == self.account
        )
        pending = DELIVERY.c.state == "pending"
        soonest = select(  # one round trip: the four waits side by side
            select(func.min(DELIVERY.c.next_at))
            .where(pending, DELIVERY.c.account_id == self.account)
            .scalar_subquery(),
            select(func.min(DELIVERY.c.next_at))
            .where(pending, DELIVERY.c.account_id.is_(None), DELIVERY.c.group_id.in_(mine))
            .scalar_subquery(),
            select(func.min(DELIVERY.c.planned_at))
            .where(pending, DELIVERY.c.account_id != self.account, DELIVERY.c.group_id.in_(mine))
            .scalar_subquery(),
            select(func.min(DELIVERY.c.claimed_at))
            .where(DELIVERY.c.state == "sending")
            .scalar_subquery(),
        )
        with self.env.engine.connect() as conn:
            own, shared, stealable, orphan = conn.execute(soonest).one()
        if stealable is not None:
            stealable += timedelta(seconds=opts.steal_after_seconds)
        if orphan is not None:  # a claim never recorded: its lease runs out then
            orphan += timedelta(seconds=opts.lease_seconds)
            self._lease_checked = float("-inf")
        times = [t for t in (own, shared, stealable, orphan) if t is not None]
        if not times:
            return None
        return max(0.0, (min(times) - self.env.clock.now()).total_seconds())


async def _to_the_end(fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """``fn`` in a thread. If the caller is cancelled, it still waits for the thread to end
    before it goes, so a lock it holds is not let go while the write is still landing."""
    work = asyncio.ensure_future(asyncio.to_thread(fn, *args, **kwargs))
    cancelled = False
    while not work.done():
        try:
            await asyncio.wait({work})  # cancelling the wait leaves the thread's work alone
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return work.result()


def _failure(exc: Exception) -> PlatformError:
    """A failed send as the platform's error; an adapter's own bug leaves the fate unknown
    (retryable)."""
    if isinstance(exc, PlatformError):
        return exc
    return PlatformError(f"{type(exc).__name__}: {exc}", retryable=True)


def refresh_queue_stats(engine: Engine, added: int) -> None:
    """A burst of copies was queued: on PostgreSQL, let the planner see it. Until autovacuum's
    next analyze the planner takes the queue for the few rows it held before, and the claim and
    wake-up queries scan every pending row per group (a national notice ran at a third of its
    speed). SQLite plans by its indexes, not by row counts."""
    if added < QUEUE_BURST or engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"ANALYZE {DELIVERY.name}"))


def expire_leases(conn: Connection, before: datetime) -> int:
    """Rows claimed before ``before`` and never recorded: their worker is presumed dead, so
    anyone may send them again, marked 补发."""
    return int(
        conn.execute(
            update(DELIVERY)
            .where(DELIVERY.c.state == "sending", DELIVERY.c.claimed_at <= before)
            .values(state="pending", resend=True, claimed_by=None)
        ).rowcount
    )


Step = Callable[[], Awaitable[tuple[bool, float | None]]]


async def _turns(
    clock: Clock, workers: Sequence[DeliveryWorker], due: list[int], overlap: bool
) -> dict[int, tuple[bool, float | None]]:
    """One step of each worker due, one after another or side by side: whether it did
    anything, and when it should run again (reckoned as its own step ends, not the round).
    Side by side, an error in one step is raised as it came once the others have finished
    theirs: a batch cut off halfway would leave copies sent and not recorded, to be sent again
    as 补发. Any further error of the round is logged."""

    async def step(i: int) -> tuple[bool, float | None]:
        did, delay = await workers[i].run_once()
        return did, None if delay is None else clock() + delay

    if not overlap or len(due) < 2:
        return {i: await step(i) for i in due}
    steps = await asyncio.gather(*(step(i) for i in due), return_exceptions=True)
    errors = [s for s in steps if isinstance(s, BaseException)]
    for other in errors[1:]:
        logger.opt(exception=other).error("同一轮中另一账号的发送步骤也出错")
    if errors:
        raise errors[0]
    return dict(zip(due, steps, strict=True))  # type: ignore[arg-type]


async def drive(
    env: RelayEnv,
    workers: Sequence[DeliveryWorker],
    *,
    until: datetime | None = None,
    jobs: Callable[[], int] | None = None,
    next_job: Callable[[], datetime | None] | None = None,
    forever: bool = False,
) -> None:
    """Run the workers (and the scheduled ``jobs``) until nothing is left to do, ``until``
    passes, or forever. On a virtual clock time jumps from one event to the next, so a day of
    relay runs in moments."""
    clock = env.clock
    wake: dict[int, float | None] = {i: clock() for i in range(len(workers))}
    # on PostgreSQL one account's claim and writes overlap another's; SQLite has one writer,
    # and a virtual clock keeps turns so that a simulated day is the same every run
    overlap = env.engine.dialect.name == "postgresql" and not isinstance(clock, VirtualClock)
    while True:
        now = clock.now()
        if until is not None and now >= until:
            return
        created = await asyncio.to_thread(jobs) if jobs is not None else 0
        mono = clock()
        active = bool(created)
        due_now = [i for i, at in wake.items() if at is not None and at <= mono + _EPS]
        for i, (did, at) in (await _turns(clock, workers, due_now, overlap)).items():
            active = active or did
            wake[i] = at
        if active:
            # rows may have changed hands (taken, reassigned, queued by a job): a worker that
            # was only waiting on the queue looks again; one waiting on its pace keeps waiting
            for i, worker in enumerate(workers):
                if not worker.pace_bound:
                    wake[i] = clock()
            continue
        # an account waiting for its platform to come back lets time pass only when the caller
        # does (``until``, ``forever``): a catch-up does not jump ahead to its hand-over
        candidates = [
            at
            for i, at in wake.items()
            if at is not None and (until is not None or forever or not workers[i].away)
        ]
        due = await asyncio.to_thread(next_job) if next_job is not None else None
        if due is not None:
            candidates.append(clock() + max(0.0, (due - clock.now()).total_seconds()))
        if until is not None:
            candidates.append(clock() + max(0.0, (until - clock.now()).total_seconds()))
        if forever:
            candidates.append(clock() + env.options.idle_poll_seconds)
        if not candidates:
            return
        # nothing happened this round: time must move on, if only by a millisecond, so that a
        # boundary case (a lease ending exactly now) cannot spin the loop at one instant
        await clock.sleep(max(min(candidates) - clock(), 0.001))
        if forever:  # another process may have queued work meanwhile
            for i, worker in enumerate(workers):
                if not worker.pace_bound:
                    wake[i] = clock()
