"""``plm serve --demo``: a demo account near its license limit and a simulated fleet of agents.

Only the CLI imports it, and only with ``--demo``."""
