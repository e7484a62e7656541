"""Activity: what agents report, as it is parsed (:mod:`.batch`), stored (:mod:`.ingestion`)
and reported (:mod:`.report`)."""
