"""What the domain runs on: the database and its write discipline (:mod:`.db`), settings,
the clock, the broadcaster of queue events (memory, PostgreSQL LISTEN/NOTIFY), the
ingest group commit, scheduled jobs with their leases, the generic outbox and its mail
sender, readiness, and the SQLite token look-up of cached answers."""
