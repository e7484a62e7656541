"""A change to the account's settings, from what the admin typed: plain Python, no Textual.

The Settings tab holds text (:class:`FormValues`); :func:`read_form` turns it into a
:class:`SettingsChange` that carries only what differs from the account as last read, or
refuses with a :class:`FormError` saying which field is wrong and why. Only numbers are
checked here: the server checks the rule's domains itself, and its answer (``INVALID_INPUT``
with a message) is what the admin reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tui_client import format as fmt
from tui_client.types import Account, AutoApproveMode

MAX_LIMIT = 10_000_000  # the server refuses more (docs/api.md)
MAX_TARGET_HOURS = 8_760  # a year; 0 removes the target
_SEPARATORS = re.compile(r"[\s,;]+")


class FormError(ValueError):
    """A field the admin must correct before anything is asked of the server."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True, kw_only=True)
class SettingsChange:
    """What ``updateAccountSettings`` is asked to change; ``None``: left as it is."""

    manual_review: bool | None = None
    license_limit: int | None = None
    auto_approve: AutoApproveMode | None = None
    auto_approve_domains: tuple[str, ...] | None = None
    #: Hours; 0 removes the target.
    queue_target_hours: int | None = None

    def __bool__(self) -> bool:
        return any(value is not None for value in self._fields().values())

    def _fields(self) -> dict[str, Any]:
        mode, domains = self.auto_approve, self.auto_approve_domains
        return {
            "manualReview": self.manual_review,
            "licenseLimit": self.license_limit,
            "autoApprove": None if mode is None else str(mode),
            "autoApproveDomains": None if domains is None else list(domains),
            "queueTargetHours": self.queue_target_hours,
        }

    def as_input(self, expected_version: str | None = None) -> dict[str, Any]:
        """The ``UpdateAccountSettingsInput``: the fields that change, and the plan's version."""
        given = {key: value for key, value in self._fields().items() if value is not None}
        if expected_version is not None:
            given["expectedQueueVersion"] = expected_version
        return given

    def describe(self, account: Account) -> list[str]:
        """Each change in words, from the account's value to the new one."""
        lines = []
        if self.license_limit is not None:
            lines.append(f"License limit: {account.license_limit:,} → {self.license_limit:,}")
        if self.manual_review is not None:
            lines.append(
                f"Manual review: {fmt.on_off(account.manual_review)} → {fmt.on_off(self.manual_review)}"
            )
        if self.auto_approve is not None:
            lines.append(
                f"Auto-approval: {fmt.auto_approve(account.auto_approve)} → {fmt.auto_approve(self.auto_approve)}"
            )
        if self.auto_approve_domains is not None:
            before, after = fmt.domains(account.auto_approve_domains), fmt.domains(self.auto_approve_domains)
            lines.append(f"Auto-approval domains: {before} → {after}")
        if self.queue_target_hours is not None:
            after_target = self.queue_target_hours or None
            lines.append(
                f"Queue target: {fmt.target(account.queue_target_hours)} → {fmt.target(after_target)}"
            )
        return lines


@dataclass(frozen=True)
class FormValues:
    """The Settings form as the admin left it: text where the admin types."""

    license_limit: str
    manual_review: bool
    auto_approve: AutoApproveMode
    domains: str
    queue_target: str

    @classmethod
    def of(cls, account: Account) -> FormValues:
        """The form filled in with the account's settings."""
        target = account.queue_target_hours
        return cls(
            license_limit=str(account.license_limit),
            manual_review=account.manual_review,
            auto_approve=account.auto_approve,
            domains=", ".join(account.auto_approve_domains),
            queue_target="" if target is None else str(target),
        )


def split_domains(text: str) -> tuple[str, ...]:
    """The domains of a comma- or space-separated list, lower case, each once, in order."""
    return tuple(dict.fromkeys(part.lower() for part in _SEPARATORS.split(text) if part))


def _whole(text: str, field: str, what: str, top: int) -> int:
    text = text.strip().replace(",", "").replace("_", "")
    if not text.isdecimal() or int(text) > top:
        raise FormError(field, f"{what} is a whole number from 0 to {top:,}.")
    return int(text)


def read_form(values: FormValues, account: Account) -> SettingsChange:
    """What the form changes in ``account`` (nothing: an empty change); :class:`FormError` when
    a number is not one."""
    limit = _whole(values.license_limit, "license_limit", "The license limit", MAX_LIMIT)
    target = values.queue_target.strip()
    hours = _whole(target, "queue_target", "The queue target", MAX_TARGET_HOURS) if target else 0
    domains = split_domains(values.domains)
    return SettingsChange(
        license_limit=None if limit == account.license_limit else limit,
        manual_review=None if values.manual_review == account.manual_review else values.manual_review,
        auto_approve=None if values.auto_approve == account.auto_approve else values.auto_approve,
        auto_approve_domains=None if domains == account.auto_approve_domains else domains,
        queue_target_hours=None if (hours or None) == account.queue_target_hours else hours,
    )
