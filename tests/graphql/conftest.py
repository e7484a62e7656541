from __future__ import annotations

import pytest

from server.db import Database
from server.services import Services
from server.settings import Settings
from tests.graphql.helpers import Gql
from tests.support import FakeClock


@pytest.fixture
def services(db: Database, db_url: str, clock: FakeClock) -> Services:
    return Services(Settings(database_url=db_url), db, clock)


@pytest.fixture
def gql(services: Services) -> Gql:
    return Gql(services)
