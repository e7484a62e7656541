"""Activity as the API shows it: app usage (the report's and a user's), a user's summary and days."""

from __future__ import annotations

import datetime as dt

import strawberry

from server.domain.activity.report import AppUsage as DomainAppUsage
from server.domain.reads import activity


@strawberry.type
class AppUsage:
    app: str
    active_seconds: int

    @classmethod
    def of(cls, usage: DomainAppUsage) -> AppUsage:
        return cls(app=usage.app, active_seconds=usage.active_seconds)


@strawberry.type(name="DailyActivity")
class DailyActivityType:
    date: dt.date
    active_seconds: int
    productive_seconds: int
    unproductive_seconds: int


@strawberry.type(name="ActivitySummary")
class ActivitySummaryType:
    days: int
    active_seconds: int
    productive_seconds: int
    unproductive_seconds: int
    top_apps: list[AppUsage] = strawberry.field(description="Up to five apps, most active first.")
    daily: list[DailyActivityType] = strawberry.field(
        description="One entry per day of the window, oldest first, days without activity included."
    )

    @classmethod
    def of(cls, summary: activity.ActivitySummary) -> ActivitySummaryType:
        return cls(
            days=summary.days,
            active_seconds=summary.active_seconds,
            productive_seconds=summary.productive_seconds,
            unproductive_seconds=summary.unproductive_seconds,
            top_apps=[AppUsage.of(a) for a in summary.top_apps],
            daily=[
                DailyActivityType(
                    date=d.day,
                    active_seconds=d.active_seconds,
                    productive_seconds=d.productive_seconds,
                    unproductive_seconds=d.unproductive_seconds,
                )
                for d in summary.daily
            ],
        )
