"""Recent samples of the broker's counters, for the console's rates and lag charts.

A sampler task takes one sample every ``interval_s``; the history keeps the
last ``keep`` of them. Rates are the difference of the two newest samples
over their time apart (nothing is known before two samples). Plain objects,
no clock of their own: the caller passes the time.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sample:
    at_s: float
    records_in: dict[str, int]  # per topic: sum of the partitions' log end offsets
    bytes_out: int  # record bytes sent to fetchers, all topics
    lag: dict[tuple[str, str, int], int] = field(default_factory=dict)  # (group, topic, partition) -> lag


class History:
    def __init__(self, keep: int = 60) -> None:
        self.samples: deque[Sample] = deque(maxlen=keep)

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)

    def _last_two(self) -> tuple[Sample, Sample] | None:
        if len(self.samples) < 2:
            return None
        older, newer = self.samples[-2], self.samples[-1]
        return (older, newer) if newer.at_s > older.at_s else None

    def records_in_per_s(self, topic: str | None = None) -> float | None:
        pair = self._last_two()
        if pair is None:
            return None
        older, newer = pair

        def total(sample: Sample) -> int:
            if topic is None:
                return sum(sample.records_in.values())
            return sample.records_in.get(topic, 0)

        return max(total(newer) - total(older), 0) / (newer.at_s - older.at_s)

    def bytes_out_per_s(self) -> float | None:
        pair = self._last_two()
        if pair is None:
            return None
        older, newer = pair
        return max(newer.bytes_out - older.bytes_out, 0) / (newer.at_s - older.at_s)

    def group_lag(self, group_id: str) -> list[tuple[float, int]]:
        """(time, total lag of the group) for every sample that knew the group."""
        points = []
        for sample in self.samples:
            lags = [lag for (group, _, _), lag in sample.lag.items() if group == group_id]
            if lags:
                points.append((sample.at_s, sum(lags)))
        return points
