"""Webhooks (docs/behaviour.md, Webhooks): queue events delivered over HTTP to per-account endpoints.

* :mod:`.tables`: the ``webhook`` table and its format;
* :mod:`.urls`: which URLs may be called (https, public addresses: the SSRF rules);
* :mod:`.payload`: the Standard Webhooks body of an event, and its Slack rendering;
* :mod:`.enqueue`: deliveries written to the outbox in the event's own transaction;
* :mod:`.manage`: create, update, delete, rotate the secret, send a test;
* :mod:`.outcomes`: what an attempt's outcome does (retry schedule, disabling an endpoint);
* :mod:`.reads`: the endpoints and their deliveries as the API lists them.

Sending is infrastructure (:mod:`server.infra.webhooks`).
"""
