"""Summaries for higher offices, computed by aggregate queries over a unit's subtree:
the build-status table (seed 002 附件2), the audit table, and (in ``matrix.media``) the media
statistics table (seed 000 附表). Rendering them is the chat layer's business (``bot/``)."""

from matrix.scope import AmbiguousUnit, OutOfScope, UnitRef, resolve_target
from matrix.summary.audit import AuditTable, FindingRecord, audit_table
from matrix.summary.build import BuildStatus, GroupLine, LevelStatus, UnbuiltUnit, build_status

__all__ = [
    "AmbiguousUnit",
    "AuditTable",
    "BuildStatus",
    "FindingRecord",
    "GroupLine",
    "LevelStatus",
    "OutOfScope",
    "UnbuiltUnit",
    "UnitRef",
    "audit_table",
    "build_status",
    "resolve_target",
]
