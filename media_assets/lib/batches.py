"""Grouping partition keys into runs."""

from __future__ import annotations


def contiguous_batches(order: list[str], wanted: set[str], size: int) -> list[list[str]]:
    """Split `wanted` into runs of consecutive keys of the partition order, at most `size` long.

    A ranged run materialises every partition between its ends, so a batch must not span a
    key that was not asked for.
    """
    batches: list[list[str]] = []
    current: list[str] = []
    for key in order:
        if key in wanted and len(current) < size:
            current.append(key)
            continue
        if current:
            batches.append(current)
        current = [key] if key in wanted else []
    if current:
        batches.append(current)
    return batches
