"""What a finding says to people: its fix advice (``templates/findings/<CODE>.j2``), the code's
title and label and the severity's word (``templates/findings/codes.toml``). The core keeps the
codes and the data each advice needs (``Finding.details``); every place that shows a finding
(chat #核查, ``qunmatrix audit``, the findings JSON the summaries read) goes through here."""

from __future__ import annotations

import tomllib
from functools import cache
from typing import Any

from bot.render.templates import TEMPLATES, render
from matrix.provisioning.findings import Finding


@cache
def _codes() -> dict[str, Any]:
    with (TEMPLATES / "findings" / "codes.toml").open("rb") as f:
        return tomllib.load(f)


def fix_text(finding: Finding) -> str:
    """The finding's fix advice, as one line."""
    return render(f"findings/{finding.code}.j2", **finding.details).strip()


def title(code: str) -> str:
    """The code's short name (#核查, ``qunmatrix audit``); an unknown code as it is."""
    return str(_codes()["code"].get(code, {}).get("title", code))


def label(code: str) -> str:
    """The code's name in the summary tables; an unknown code as it is."""
    return str(_codes()["code"].get(code, {}).get("label", code))


def severity_label(severity: str) -> str:
    """严重 / 警告 / 提示, or the engine's own word for a severity we do not know."""
    return str(_codes()["severity"].get(severity, severity))


def finding_json(finding: Finding) -> dict[str, Any]:
    """One finding as ``qunmatrix audit --json`` writes it and the summaries read it: ``person``
    stays the roster id (scripts join on it); ``person_name`` and ``fix`` are for people."""
    return {
        "code": finding.code,
        "severity": finding.severity,
        "unit": finding.unit,
        "group": finding.group,
        "person": finding.person,
        "person_name": finding.person_name,
        "contact": finding.contact,
        "fix": fix_text(finding),
    }
