"""Activity as the API shows it: app usage (the report's and a user's), a user's summary and days.

A user's summary, its days and its apps are the domain's records, completed as these types
as they are (``completes_as``): a page of 50 users' 30 days makes no object per day here.
"""

from __future__ import annotations

import datetime as dt

import strawberry

from server.domain.activity.report import AppUsage as DomainAppUsage
from server.domain.reads import activity

from ..completion import completes_as


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


completes_as(AppUsage, DomainAppUsage)
completes_as(DailyActivityType, activity.DayActivity)
completes_as(ActivitySummaryType, activity.ActivitySummary)
