"""The Pending License Management server, in layers (lowest first; docs/architecture.md):

* :mod:`server.domain`: the rules, on SQLAlchemy sessions; no web, GraphQL or terminal code.
* :mod:`server.infra`: the database, the broadcaster, jobs, the outbox, settings.
* :mod:`server.web` and :mod:`server.graphql`: the edges, HTTP and GraphQL.
* :mod:`server.demo` and :mod:`server.cli`: the ``plm`` command and its demo.

A module never imports one from a layer above it (``tests/test_layers.py``).
"""
