"""The old home of ``matrix.scope`` (whose subtree a summary covers), kept for importers on
other branches; it moved to the top level because ``matrix.media`` uses it and the top-level
modules do not import the ``matrix.summary`` package. New code imports ``matrix.scope``."""

from matrix.scope import (  # noqa: F401  (re-exported)
    UNIT,
    AmbiguousUnit,
    OutOfScope,
    UnitRef,
    resolve_target,
    top_unit,
    under,
    unit_ref,
)
