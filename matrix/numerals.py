"""Chinese numerals, as people write them in names: 第十二小学, 大队辅导员二群."""

from __future__ import annotations

_DIGITS = "一二三四五六七八九"


def chinese_number(n: int) -> str:
    """1 → 一, 12 → 十二, 105 → 一百零五, for 1 ≤ n ≤ 999.

    >>> [chinese_number(n) for n in (1, 10, 12, 20, 105, 112, 340, 999)]
    ['一', '十', '十二', '二十', '一百零五', '一百一十二', '三百四十', '九百九十九']
    """
    if not 1 <= n <= 999:
        raise ValueError(f"chinese_number handles 1..999, not {n}")
    if n < 10:
        return _DIGITS[n - 1]
    if n < 100:
        tens, ones = divmod(n, 10)
        head = "十" if tens == 1 else _DIGITS[tens - 1] + "十"
        return head + (_DIGITS[ones - 1] if ones else "")
    hundreds, rest = divmod(n, 100)
    head = _DIGITS[hundreds - 1] + "百"
    if rest == 0:
        return head
    if rest < 10:
        return head + "零" + _DIGITS[rest - 1]
    # inside a larger number ten is written 一十: 一百一十二
    return head + ("一" + chinese_number(rest) if rest < 20 else chinese_number(rest))
