"""How the lyrics encoder cuts its inputs into padded batches (lgfn_model/text/batching.py)."""

from __future__ import annotations

from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lgfn_model.text.batching import length_runs


def _cost(lengths: list[int], runs: list[range], call_cost: int) -> int:
    return sum(len(run) * lengths[run.stop - 1] + call_cost for run in runs)


def _least_cost(lengths: list[int], max_rows: int, call_cost: int) -> int:
    """Every way to cut the sorted lengths, tried."""
    count = len(lengths)
    best = None
    for cuts in range(count):
        for inner in combinations(range(1, count), cuts):
            edges = [0, *inner, count]
            runs = [range(a, b) for a, b in zip(edges, edges[1:], strict=False)]
            if all(len(run) <= max_rows for run in runs):
                cost = _cost(lengths, runs, call_cost)
                best = cost if best is None else min(best, cost)
    return best or 0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=60), max_size=9),
    st.integers(min_value=1, max_value=10),
    st.integers(min_value=0, max_value=80),
)
def test_runs_cover_every_list_in_order_and_cost_the_least(lengths, max_rows, call_cost) -> None:
    lengths = sorted(lengths)
    runs = length_runs(lengths, max_rows, call_cost)
    assert [i for run in runs for i in run] == list(range(len(lengths)))
    assert all(1 <= len(run) <= max_rows for run in runs)
    assert _cost(lengths, runs, call_cost) == _least_cost(lengths, max_rows, call_cost)


def test_lines_of_one_length_make_full_batches_and_spread_lengths_are_cut() -> None:
    same = length_runs([12] * 130, 64)
    assert len(same) == 3 and all(len(run) <= 64 for run in same)  # no call more than needed
    spread = [5, 6, 7, 8, 12, 14, 14, 15, 22, 30, 34]
    runs = length_runs(spread, 64)
    assert len(runs) > 1
    assert _cost(spread, runs, 32) < len(spread) * spread[-1] + 32  # one batch wastes more


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="sorted"):
        length_runs([3, 2], 8)
    with pytest.raises(ValueError, match="max_rows"):
        length_runs([1, 2], 0)
    assert length_runs([], 8) == []
