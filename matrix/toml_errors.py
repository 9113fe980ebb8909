"""TOML syntax errors in Chinese with line and column, for config.toml and blueprints alike.
Python 3.11's ``TOMLDecodeError`` carries both only inside its English message."""

from __future__ import annotations

import re
import tomllib

_WHERE = re.compile(
    r"^(?P<what>.*?)\s*\(at (?:line (?P<line>\d+), column (?P<col>\d+)|end of document)\)$", re.S
)

# tomllib's wording (3.11) → what to fix; the first match wins
_REASONS = (
    ("Illegal character '\\n'", "引号没有闭合（字符串在行尾断开），请补上结尾的引号"),
    ("Unterminated string", "引号没有闭合，请补上结尾的引号"),
    ("Illegal character", "有不允许的字符，请检查引号和转义"),
    ("Expected '=' after a key", "键后面缺少 =，应写成 名称 = 值"),
    ("Invalid value", "值写法无效：字符串要加引号，布尔值写 true 或 false"),
    ("Invalid statement", "这一行看不懂：应为 名称 = 值 或 [表名]"),
    ("Invalid initial character for a key", "键名写法无效：只能用字母、数字、_ 和 -，其余请加引号"),
    ("Expected ']' at the end of a table", "表名缺少结尾的 ]"),
    ("Expected ']]' at the end of an array", "表数组缺少结尾的 ]]"),
    ("Unclosed array", "列表缺少结尾的 ]"),
    ("Unclosed inline table", "内联表缺少结尾的 }"),
    ("Cannot overwrite a value", "同一个键写了两次，请删去一处"),
    ("Cannot declare", "同一个表写了两次，请合并"),
    ("Duplicate inline table key", "内联表里同一个键写了两次"),
    ("Cannot redefine namespace", "同一个表重复定义，请合并"),
    ("Cannot mutate immutable namespace", "内联表定义后不能再补充键"),
    ("Invalid date or datetime", "日期或时间写法无效，如 2026-12-01 或 17:00:00"),
    ("Expected newline or end of document", "一行只能写一项，后面多出了内容"),
    ("Unescaped '\\'", "字符串里的 \\ 需要写成 \\\\，或改用单引号"),
    ("Invalid hex value", "\\u 转义后的十六进制无效"),
    ("Escaped character is not a Unicode", "\\u 转义的字符无效"),
    ("Found invalid character", "有不允许的字符"),
)


def toml_error_text(error: tomllib.TOMLDecodeError, source: str) -> str:
    """``文件 X 第 L 行第 C 列：原因`` (no column where tomllib gives none)."""
    message = str(error)
    match = _WHERE.match(message)
    what = match["what"] if match else message
    reason = next((zh for en, zh in _REASONS if what.startswith(en)), "TOML 语法错误")
    where = f"第 {match['line']} 行第 {match['col']} 列" if match and match["line"] else "文件末尾"
    return f"{source} {where}：{reason}"
