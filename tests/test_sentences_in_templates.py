"""Every sentence a person reads lives once, in templates/: the findings' fix advice, the code
and severity names, the summary forms' words. A Chinese text put back into the Python that
renders them fails here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from bot.render.templates import TEMPLATES, data, label
from matrix.provisioning.findings import KINDS

ROOT = Path(__file__).resolve().parents[1]
CHINESE = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")  # CJK punctuation, ideographs, fullwidth

# Chinese literals that stay, and why
ALLOWED = {
    # a person's stand-in name in the findings JSON (``person_name``) when the roster id has
    # none; scripts read that field, so the core fills it
    "matrix/provisioning/findings.py": {"人员"},
    # the fix of the FindingsFileError raised when a findings file cannot be read
    "matrix/summary/audit.py": {"请用 qunmatrix audit --json > findings.json 生成该文件"},
}


def chinese_literals(relative: str) -> list[str]:
    """Chinese string literals of a module, docstrings and MatrixError messages aside."""
    tree = ast.parse((ROOT / relative).read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            skipped.add(id(body[0].value))  # a docstring
        if isinstance(node, ast.Raise):
            skipped.update(id(n) for n in ast.walk(node))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in skipped
        and CHINESE.search(node.value)
    ]


@pytest.mark.parametrize(
    "module",
    [
        "bot/render/summary_xlsx.py",
        "bot/render/findings.py",
        "bot/render/provision.py",
        "matrix/provisioning/findings.py",
        "matrix/summary/audit.py",
    ],
)
def test_no_sentence_is_built_in_python(module):
    assert set(chinese_literals(module)) <= ALLOWED.get(module, set())


def test_the_check_finds_a_sentence_in_python(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (tmp_path / "m.py").write_text('"""文档"""\nX = f"{n} 个单位未回执"\n', encoding="utf-8")
    assert chinese_literals("m.py") == [" 个单位未回执"]


def test_every_finding_code_has_its_advice_title_and_label_and_nothing_else_does():
    advice = {p.stem for p in (TEMPLATES / "findings").glob("*.j2")}
    codes = data("findings/codes.toml")["code"]
    assert advice == set(KINDS) == set(codes)
    for code in KINDS:
        assert CHINESE.search(codes[code]["title"]) and CHINESE.search(codes[code]["label"])
    assert set(data("findings/codes.toml")["severity"]) >= {k.severity for k in KINDS.values()}


def test_the_build_note_has_one_wording_in_every_file_format():
    note = label("build.note")
    assert note.startswith("说明：")
    for fmt in ("html", "md"):
        text = (TEMPLATES / "summary" / f"build.{fmt}.j2").read_text(encoding="utf-8")
        assert 'label("build.note")' in text and "说明：" not in text
