"""Which rows a list may read, asked of the policy once per request.

The answer scopes the list's SQL statement, so LIMIT counts only rows the caller may see:
a check made after LIMIT would cut pages short and let their links count hidden rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from segmentd.auth.policy import check, decided_by_samples
from segmentd.context import RequestContext

MINE = object()  # in a sample target: the caller's own project
ELSEWHERE = "\x00elsewhere"  # in a sample target: a project no caller is in


@dataclass(frozen=True, slots=True)
class ListScope:
    grants: frozenset[str] | None  # kinds of rows the statement admits; None: all it knows
    keep: Callable[[Mapping[str, Any]], bool]  # the policy's decision on one row

    @property
    def empty(self) -> bool:
        return self.grants is not None and not self.grants


def list_scope(
    ctx: RequestContext,
    action: str,
    samples: Mapping[str, Mapping[str, Any]],
    target_of: Callable[[Mapping[str, Any]], Mapping[str, Any]],
) -> ListScope:
    """The kinds of rows (query.Rows) `action` lets the caller read.

    `samples` holds, per kind, a target standing for its rows: fields of the caller's project
    are MINE, fields of others ELSEWHERE, and shared networks' `shared` True. When the rule
    reads targets only by comparing such fields with the caller's project or with True (as
    every built-in read rule does), its answers on the samples hold for every row of a
    kind, and the statement admits exactly what the caller may read. A rule that reads
    targets otherwise (an operator's, in a policy file) cannot be sampled: then every kind
    is admitted and `keep` decides row by row, a page reading on until it is full.
    """

    def keep(row: Mapping[str, Any]) -> bool:
        return check(ctx, action, target_of(row))

    if not decided_by_samples(ctx, action, _comparisons(samples)):
        return ListScope(None, keep)
    granted = frozenset(
        kind for kind, sample in samples.items()
        if check(ctx, action, {k: ctx.project_id if v is MINE else v for k, v in sample.items()})
    )
    return ListScope(granted, keep)


def _comparisons(samples: Mapping[str, Mapping[str, Any]]) -> frozenset[tuple[str, str]]:
    """The comparisons the samples decide: the caller's project with a field some sample sets
    to MINE, and True with a field some sample sets True."""
    return frozenset(
        ("project_id", k) if v is MINE else ("'True'", k)
        for sample in samples.values() for k, v in sample.items() if v is MINE or v is True
    )
