"""``SeatPlan``: what an approval or a settings change would do (server.domain.plans)."""

from __future__ import annotations

import strawberry

from server.domain.plans import Preview

from .payloads import UserError
from .users import UserType


@strawberry.type(name="SeatPlan", description="What a change would do, computed without changing anything.")
class SeatPlanType:
    approve: list[UserType] = strawberry.field(
        description="Users that would become LICENSED (including by auto-approval), "
        "in the order they would take the licenses."
    )
    move_to_pending: list[UserType] = strawberry.field(
        description="LICENSED users that would move to the queue (a lowered limit), most recently licensed first."
    )
    license_limit: int
    licenses_used_before: int
    licenses_used_after: int
    queue_version: str = strawberry.field(
        description="Pass as expectedQueueVersion to apply exactly this plan; a change in between "
        "answers PLAN_CHANGED and changes nothing."
    )
    errors: list[UserError] = strawberry.field(
        description="The errors applying the change now would answer (e.g. LICENSE_LIMIT_EXCEEDED); "
        "approve and moveToPending are empty then."
    )

    @classmethod
    def of(cls, preview: Preview) -> SeatPlanType:
        plan = preview.plan
        return cls(
            approve=[UserType.of(u) for u in plan.approve],
            move_to_pending=[UserType.of(u) for u in plan.move_to_pending],
            license_limit=plan.license_limit,
            licenses_used_before=plan.licenses_used_before,
            licenses_used_after=plan.licenses_used_after,
            queue_version=preview.queue_version,
            errors=[UserError.of(e) for e in preview.errors],
        )
