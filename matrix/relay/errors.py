"""What can go wrong in the relay, each with a Chinese message and what to do instead."""

from __future__ import annotations

from matrix.errors import MatrixError


class RelayError(MatrixError):
    """A relay command that cannot be carried out; nothing was written."""


class NotInMatrix(RelayError):
    """The command came from a room the matrix does not know."""

    def __init__(self) -> None:
        super().__init__(
            "本群不在群矩阵中", fix="请在本单位牵头建立的工作群里发送，或请管理员先登记本群"
        )


class NotAllowed(RelayError):
    """The sender may not do this here (permissions are by contact id and tree position)."""


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
