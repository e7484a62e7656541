"""likely matches both ways, and for licensed users

Suggestions were kept for pending users only, and of two pending duplicates only the later
one pointed at the earlier. Every user now has its likely matches, both ways
(server/domain/suggestions/store.py): recompute them all, by the same code the server runs.
Data only; the downgrade leaves the rows (the older server reads a pending user's only).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from server.domain.models import utcnow
from server.domain.suggestions.store import recompute_all

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    recompute_all(op.get_bind(), utcnow())


def downgrade() -> None:
    pass
