"""What a finding says to people: its fix advice (``templates/findings/<CODE>.j2``), the code's
title and label and the severity's word (``templates/findings/codes.toml``). The core keeps the
codes and the data each advice needs (``Finding.details``); every place that shows a finding
(chat #核查, ``qunmatrix audit``, the findings JSON the summaries read) goes through here."""

from __future__ import annotations

from typing import Any

from bot.render.templates import finding_label, finding_title, render, severity_label
from matrix.provisioning.findings import Finding

__all__ = ["finding_json", "finding_label", "finding_title", "fix_text", "severity_label"]


def fix_text(finding: Finding) -> str:
    """The finding's fix advice, as one line."""
    return render(f"findings/{finding.code}.j2", **finding.details).strip()


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
