"""A shop's opening hours on its own clock: when work, invoices and payments can happen.

The history generator places everything a customer or a technician does inside these hours, in
the shop's IANA zone, so a shop in Phoenix invoices in the Phoenix afternoon, not at 3 am. The
zone's daylight-saving changes come from `zoneinfo` (the tz database): each local opening and
closing time is converted on its own date, so a week that changes offset keeps 07:30 local.

Time inside the hours is a line of "business seconds" (only open seconds count): a stage that
takes two hours of work started at 17:00 finishes the next morning, and a random moment of the
history is uniform over open time (a Saturday, open fewer hours, is quieter than a Tuesday).
"""
from __future__ import annotations

import bisect
import datetime as dt
import random
from zoneinfo import ZoneInfo

from ..timefmt import DAY

# local (open, close) as seconds after midnight, Monday .. Sunday; None: closed
WEEK = ((27000, 64800), (27000, 64800), (27000, 64800), (27000, 64800), (27000, 64800),  # 07:30-18:00
        (28800, 50400),  # Saturday 08:00-14:00
        None)            # Sunday closed


class ShopHours:
    """The open windows of one shop from `begin` to `end` (epoch seconds), as sorted epochs."""

    def __init__(self, zone: str, begin: int, end: int) -> None:
        self.zone = ZoneInfo(zone)
        first = dt.datetime.fromtimestamp(begin - DAY, self.zone).date()
        last = dt.datetime.fromtimestamp(end + DAY, self.zone).date()
        opens: list[int] = []
        closes: list[int] = []
        cum: list[int] = [0]
        day = first
        while day <= last:
            hours = WEEK[day.weekday()]
            if hours is not None:
                opens.append(self._epoch(day, hours[0]))
                closes.append(self._epoch(day, hours[1]))
                cum.append(cum[-1] + closes[-1] - opens[-1])
            day += dt.timedelta(days=1)
        self.opens, self.closes, self.cum = opens, closes, cum

    def _epoch(self, day: dt.date, seconds: int) -> int:
        local = dt.datetime(day.year, day.month, day.day, seconds // 3600, seconds // 60 % 60, tzinfo=self.zone)
        return int(local.timestamp())

    def local(self, ts: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(ts, self.zone)

    def local_midnight_after(self, ts: int) -> int:
        """The epoch of the local midnight that ends the local day of `ts`."""
        day = self.local(ts).date() + dt.timedelta(days=1)
        return int(dt.datetime(day.year, day.month, day.day, tzinfo=self.zone).timestamp())

    def business(self, ts: int) -> int:
        """Open seconds before `ts` (a closed moment counts as the next opening)."""
        i = bisect.bisect_right(self.opens, ts) - 1
        if i < 0:
            return 0
        if ts < self.closes[i]:
            return self.cum[i] + ts - self.opens[i]
        return self.cum[i + 1]

    def at(self, b: int) -> int:
        """The moment after `b` open seconds (inverse of `business`)."""
        i = bisect.bisect_right(self.cum, b) - 1
        if i >= len(self.opens):
            i = len(self.opens) - 1
        return self.opens[i] + (b - self.cum[i])

    def add(self, ts: int, seconds: int) -> int:
        """`ts` moved on by `seconds` of open time (a closed `ts` starts at the next opening)."""
        i = bisect.bisect_right(self.opens, ts) - 1
        if i >= 0 and ts + seconds < self.closes[i]:
            return ts + seconds  # within the same opening (the usual case)
        return self.at(self.business(ts) + seconds)

    def open_at_or_after(self, ts: int) -> int:
        return self.add(ts, 0)

    def random_between(self, rng: random.Random, lo: int, hi: int) -> int:
        """A moment uniform over the open time in [lo, hi); `lo`'s next opening if none is open."""
        b_lo = self.business(lo)
        span = self.business(hi) - b_lo
        return self.at(b_lo + int(rng.random() * span)) if span > 0 else self.at(b_lo)

    def is_open(self, ts: int) -> bool:
        i = bisect.bisect_right(self.opens, ts) - 1
        return i >= 0 and ts < self.closes[i]
