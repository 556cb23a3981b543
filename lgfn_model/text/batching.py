"""Which token lists the encoder runs together: batches cut where padding would cost more than
another call.

A padded batch costs every row the width of its longest row, so one batch of a song's lines
(6 to 34 tokens) pays for 1.6 times the tokens it holds (the ten Jamendo songs: 6,554 for
4,031). Lists sorted by length and cut into runs of similar length waste little; each run is
one more call of the network, which costs about as much as ``CALL_COST_TOKENS`` tokens on a
CPU (a 12-layer BERT of width 384: ~10 ms a call beside ~0.5 ms a token, one thread, int8).
:func:`length_runs` finds the cuts of least total cost exactly (a shortest path over the sorted
lengths). Rows never see each other (padding is masked), so the cut changes what each row costs,
not what it computes.
"""

from __future__ import annotations

from collections.abc import Sequence

CALL_COST_TOKENS = 32
"""What one more call of the encoder costs, in tokens of work."""


def length_runs(
    lengths: Sequence[int], max_rows: int, call_cost: int = CALL_COST_TOKENS
) -> list[range]:
    """Cut ``lengths`` (sorted, ascending) into consecutive runs of at most ``max_rows``
    that minimise the padded tokens plus ``call_cost`` a run."""
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, got {max_rows}")
    if any(lengths[i] > lengths[i + 1] for i in range(len(lengths) - 1)):
        raise ValueError("lengths must be sorted, shortest first")
    count = len(lengths)
    best = [0] * (count + 1)  # best[j]: the least cost of the first j lists
    cut = [0] * (count + 1)  # cut[j]: where the last run of that best starts
    for end in range(1, count + 1):
        width = lengths[end - 1]  # sorted: a run's width is its last list's length
        options = range(max(0, end - max_rows), end)
        start = min(options, key=lambda i: best[i] + (end - i) * width + call_cost)
        best[end] = best[start] + (end - start) * width + call_cost
        cut[end] = start
    runs: list[range] = []
    end = count
    while end > 0:
        runs.append(range(cut[end], end))
        end = cut[end]
    return runs[::-1]
