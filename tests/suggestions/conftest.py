from tests.graphql.conftest import gql, services

__all__ = ["gql", "services"]
