"""Recurring deadlines: a cut-off at a wall-clock time on chosen weekdays, except on holidays.

"Order by 14:00 for next-day delivery" is ``{"time": "14:00"}``; "ends every Sunday 23:59" is
``{"time": "23:59", "weekdays": ["sun"]}``; ``except_dates`` lists the local dates on which the
cut-off does not apply, so the next valid day's cut-off is used.

At a moment, the deadline is the next occurrence strictly after it, worked out in the zone's
wall-clock time with ``zoneinfo``, so it stays at 14:00 local across a DST change. A time the
clocks skip that day (02:30 when they jump from 02:00 to 03:00) falls when the clocks pass it
(03:30), and a time they repeat (when they fall back) is its first occurrence.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""In ``datetime.date.weekday()`` order."""
MAX_EXCEPT_DATES = 366


class RecurringDeadline(BaseModel):
    """A cut-off time on some weekdays, in the countdown's zone, skipping some dates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    time: dt.time = Field(description='Local wall-clock cut-off, "HH:MM" or "HH:MM:SS".')
    weekdays: list[Weekday] = Field(
        default_factory=lambda: list(WEEKDAYS),
        min_length=1,
        description="Days the cut-off applies (default every day); one day makes it weekly.",
    )
    except_dates: list[dt.date] = Field(
        default_factory=list,
        max_length=MAX_EXCEPT_DATES,
        description="Local dates (holidays) without a cut-off: the next valid day's is used.",
    )

    @field_validator("time")
    @classmethod
    def _wall_clock(cls, time: dt.time) -> dt.time:
        if time.tzinfo is not None:
            raise ValueError("give a wall-clock time without a UTC offset; set time_zone instead")
        return time.replace(microsecond=0)

    @field_validator("weekdays")
    @classmethod
    def _canonical_weekdays(cls, weekdays: list[Weekday]) -> list[Weekday]:
        if len(set(weekdays)) != len(weekdays):
            raise ValueError("weekdays must not repeat")
        return [day for day in WEEKDAYS if day in weekdays]

    @field_validator("except_dates")
    @classmethod
    def _sorted_dates(cls, dates: list[dt.date]) -> list[dt.date]:
        return sorted(set(dates))

    def next_after(self, moment: dt.datetime, zone: dt.tzinfo) -> dt.datetime | None:
        """The first cut-off strictly after ``moment`` (aware), in UTC; None past year 9999."""
        days = {WEEKDAYS.index(day) for day in self.weekdays}
        skipped = frozenset(self.except_dates)
        start = moment.astimezone(zone).date()
        # Each excluded date can push the next cut-off at most a week further on.
        for offset in range(7 * (len(skipped) + 1) + 1):
            try:
                date = start + dt.timedelta(days=offset)
                if date.weekday() not in days or date in skipped:
                    continue
                cut_off = dt.datetime.combine(date, self.time, tzinfo=zone).astimezone(dt.UTC)
            except OverflowError:
                return None
            if cut_off > moment:
                return cut_off
        return None
