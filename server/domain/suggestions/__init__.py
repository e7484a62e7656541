"""Likely-match suggestions: which existing user or agent a pending user probably is.

Many pending users are not new people: a local account on a laptop whose owner is licensed
through the domain, a renamed or re-imaged device (a new agent key for the same login), a
login in another format (``jdoe`` / ``john.doe`` / ``john.doe@acme.com``), a domain
migration (``OLDCORP\\jdoe`` -> ``ACME\\jdoe``). For each user entering the queue the server
stores up to :data:`.score.MAX_STORED` suggestions, best first, each an ASSIGN (to an existing
user) or a MERGE (into an existing agent) with a score and reasons an admin reads.

- :mod:`.normalise`: the pure text normalisation: logins, names, devices, and the match
  keys an agent is filed under and a pending agent looks up;
- :mod:`.score`: the pure scoring of a pending user's agents against candidate agents: the
  rules, their weights, the kind (ASSIGN or MERGE) and the threshold;
- :mod:`.store`: the database side: filing match keys, computing, refreshing, forgetting
  and reading the stored suggestions (:class:`.store.Found`), and the backfill run by
  migration 0003.

Callers import the submodule they need; nothing is re-exported here.
"""
