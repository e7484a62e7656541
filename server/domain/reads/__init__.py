"""Read-side domain queries: keyset-paginated lists, batch loads and pending-user info.

Everything here is plain SQLAlchemy over the models' tables; the GraphQL layer calls it
through per-request DataLoaders and list resolvers. Every query is scoped to one account.

- :mod:`.rows`: what the read side loads of a user or an agent (frozen rows, no ORM), and
  the Protocols a row and a written model both satisfy;
- :mod:`.cursors`: ids and keyset cursors as clients see them, :class:`.cursors.Page` and
  how a list sorts and pages (:class:`.cursors.Keyset`);
- :mod:`.lists`: the account's lists, their filters and counts: the pending queue, users,
  agents, the audit trail and the settings history;
- :mod:`.loads`: the batch loads by id behind the DataLoaders, and a pending user's info;
- :mod:`.activity`: a user's activity over its last days and when its latest ended, in batches.

Callers import the submodule they need; nothing is re-exported here.
"""
