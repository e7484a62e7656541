"""The clock type every time rule takes, so tests inject time instead of sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

Clock = Callable[[], datetime]
