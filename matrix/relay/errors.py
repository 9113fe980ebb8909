"""What can go wrong in the relay, each with a Chinese message and what to do instead."""

from __future__ import annotations

from matrix.errors import MatrixError
from matrix.provisioning.authority import OUTSIDE, STRANGER, Denied


class RelayError(MatrixError):
    """A relay command that cannot be carried out; nothing was written."""


class NotInMatrix(RelayError):
    """The command came from a room the matrix does not know."""

    def __init__(self) -> None:
        super().__init__(
            "本群不在群矩阵中", fix="请在本单位牵头建立的工作群里发送，或请管理员先登记本群"
        )


class NotAllowed(Denied, RelayError):
    """The sender may not do this here: a refusal of ``matrix.provisioning.authority``'s policy, with its
    reason code (stranger, not_office, outside), worded for the relay action by ``refused``."""

    def __init__(
        self, message: str, *, fix: str = "", reason: str = OUTSIDE, action: str = ""
    ) -> None:
        Denied.__init__(self, action, reason, message=message, fix=fix)


# the relay's refusals, each worded once: (action, reason) → (message, fix); {unit} and {code}
# are filled in
_WORDS: dict[tuple[str, str], tuple[str, str]] = {
    ("notice", STRANGER): (
        "你不在名册中，不能下发通知",
        "请本单位管理员把你的微信号登记到名册",
    ),
    ("notice", OUTSIDE): (
        "只有{unit}的办公室同志可以在本群下发通知",
        "请在你所在单位牵头的工作群里发送，通知只能发往本单位下属的群",
    ),
    ("ack", STRANGER): ("你不在名册中，回执未记录", "请联系管理员把你的微信号登记到名册"),
    ("ack", OUTSIDE): ("只有{unit}的人员回复“收到”才计为回执", "请由本单位在群里的负责同志回复"),
    ("progress", OUTSIDE): (
        "你所在单位不在这条通知的下发范围内，不能查看进度",
        "只能查看本单位或上级单位下发的通知",
    ),
    ("report", STRANGER): ("你不在名册中，不能上报", "请联系管理员把你的微信号登记到名册"),
    ("report", OUTSIDE): ("名册中没有你的单位，不能上报", "请联系管理员核对名册"),
    ("forward", OUTSIDE): (
        "上报 {code} 现在在{unit}，只有该单位办公室同志可以转报",
        "请由收到上报的单位转报",
    ),
    # a notice's life after #通知: only its issuer confirms it; its issuing office, or an
    # office above it, withdraws, corrects or stops it
    ("confirm", OUTSIDE): (
        "只有发出通知 {code} 的{name}本人可以确认发送",
        "请由发出通知的同志发送“#确认 {code}”",
    ),
    ("withdraw", STRANGER): ("你不在名册中，不能撤回通知", "请联系管理员把你的微信号登记到名册"),
    ("withdraw", OUTSIDE): (
        "通知 {code} 由{unit}发出，只有{unit}或其上级单位的办公室同志可以撤回",
        "请联系{unit}办公室",
    ),
    ("correct", OUTSIDE): (
        "通知 {code} 由{unit}发出，只有{unit}或其上级单位的办公室同志可以更正",
        "请联系{unit}办公室",
    ),
    ("stop", OUTSIDE): (
        "通知 {code} 由{unit}发出，只有{unit}或其上级单位的办公室同志可以停止",
        "请联系{unit}办公室",
    ),
}


def refused(action: str, reason: str, **names: str) -> NotAllowed:
    """The relay's refusal of ``action`` for ``reason`` (the policy's code), in its one wording
    (a reason the action has no wording of its own for, not_office, reads as ``outside``)."""
    message, fix = _WORDS.get((action, reason)) or _WORDS[(action, OUTSIDE)]
    return NotAllowed(
        message.format(**names), fix=fix.format(**names), reason=reason, action=action
    )


class UnknownCode(RelayError):
    """An id that names no notice or report (or none the asker may see)."""


class BadCommand(RelayError):
    """The command's text cannot be understood."""


class ContentBlocked(RelayError):
    """The content guard refused the text; ``marker`` is what matched."""

    def __init__(self, marker: str, where: str) -> None:
        super().__init__(
            f"{where}含有“{marker}”字样，可能涉密，已拦截，未发送",
            fix="群内不得发布涉密信息；请删改后重发，如确非涉密内容请联系管理员调整词表",
        )
        self.marker = marker
