"""The content guard (不得发布涉密信息) and the watch list (舆情监控).

The guard runs before anything is relayed or reported: a classification marker or a configured
word in the text or in an attachment's name blocks it. Matching folds full-width forms and case
and ignores spaces and separators put between the characters (``机 密``, ``机*密``), so that a
marker cannot be slipped past by spacing it out; ``allowed_phrases`` are taken out first so that
harmless words containing a marker (``省内部署``) pass.

``enforce`` is the guard as commands use it: a hit is written to the audit log (the marker and
where, never the text) and raised as ``ContentBlocked``.

The watch list never blocks: a match is only flagged to the group's admins (see
``matrix.relay.watch``).

>>> opts = RelayOptions(blocked_words=["考试答案"])
>>> check_content(opts, "请于今日 17:00 前报送名单") is None
True
>>> check_content(opts, "附件为机 密文件").marker
'机密'
>>> check_content(opts, "全省内部署工作") is None
True
>>> hit = check_content(opts, "见附件", ["【内部资料】名单.docx"])
>>> hit.marker, hit.where
('内部', '附件“【内部资料】名单.docx”')
>>> watch_match(RelayOptions(watch_words=["罢课"]), "有人说要罢 课")
'罢课'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from matrix import audit_log
from matrix.relay.errors import ContentBlocked
from matrix.relay.options import RelayOptions

if TYPE_CHECKING:
    from matrix.relay.env import RelayEnv

# spaces and the punctuation people put between characters to break up a word
_NOISE = re.compile(r"[\s\u200b-\u200f\ufeff·・.。,，*＊_\-—~|/\\'\"“”‘’]+")


@dataclass(frozen=True)
class GuardHit:
    """What blocked a text: the marker or word, and where it was found (正文 / 附件“…”)."""

    marker: str
    where: str


def fold(text: str) -> str:
    """The form matching works on.

    >>> fold("Ｎｏ. 机 密★")
    'no机密★'
    """
    return _NOISE.sub("", unicodedata.normalize("NFKC", text)).lower()


def _first_hit(folded: str, words: Sequence[str], allowed: Sequence[str]) -> str | None:
    for phrase in allowed:
        if phrase:
            folded = folded.replace(phrase, "\x00")
    for word in words:
        if word and fold(word) in folded:
            return word
    return None


def check_content(
    options: RelayOptions, text: str, attachments: Sequence[str] = ()
) -> GuardHit | None:
    """The first classification marker or blocked word in the text or an attachment name."""
    words = [*options.classified_markers, *options.blocked_words]
    allowed = [fold(p) for p in options.allowed_phrases]
    for where, content in [("正文", text), *((f"附件“{a}”", a) for a in attachments)]:
        if (word := _first_hit(fold(content), words, allowed)) is not None:
            return GuardHit(word, where)
    return None


def watch_match(options: RelayOptions, text: str) -> str | None:
    """The first watch-list word in ``text``, or None."""
    return _first_hit(fold(text), options.watch_words, ())


def enforce(
    env: RelayEnv,
    text: str,
    attachments: Sequence[str],
    *,
    actor: str,
    unit_code: str | None,
    what: str,
) -> None:
    """Refuse ``text`` if the guard blocks it: audit the refusal (in its own transaction, so it
    stays when the command fails) and raise ``ContentBlocked``. ``what`` is 通知 or 上报."""
    hit = check_content(env.options, text, attachments)
    if hit is None:
        return
    with env.engine.begin() as conn:
        audit_log.record(
            conn, actor, "relay.blocked", unit_code, what=what, marker=hit.marker, where=hit.where
        )
    raise ContentBlocked(hit.marker, f"{what}{hit.where}")
