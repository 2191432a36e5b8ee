"""The search the FP16 and INT8 steps share: which nodes must stay in float for the accuracy bars to hold."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["fewest_kept"]


def fewest_kept(candidates: Sequence[str], evaluate: Callable[[frozenset], Any]) -> tuple[frozenset, dict[str, Any]]:
    """Release nodes from ``candidates`` (all kept in float at the start) in halving segments.

    A segment whose release still passes is released; a failing single node stays kept with the measured
    failure. ``evaluate(kept)`` returns an object with ``passed`` and ``worst``.

    Returns:
        ``(nodes that stay in float, {node: its measured failure})``.
    """
    keep: set[str] = set(candidates)
    failures: dict[str, Any] = {}
    queue = [list(candidates)]
    while queue:
        segment = queue.pop(0)
        trial = frozenset(keep - set(segment))
        result = evaluate(trial)
        if result.passed:
            keep = set(trial)
        elif len(segment) == 1:
            failures[segment[0]] = result.worst
        else:
            half = len(segment) // 2
            queue[:0] = [segment[:half], segment[half:]]
    return frozenset(keep), failures
