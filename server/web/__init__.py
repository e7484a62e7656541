"""The HTTP edge: the app and its lifespan (:mod:`.app`), ``POST /ingest``, ``/healthz`` and
``/readyz``, small HTTP helpers (bodies, the request deadline, logs), the per-process
runtime every edge shares (:mod:`.runtime`) and the scheduled jobs' wiring (:mod:`.schedule`)."""
