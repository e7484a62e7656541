"""Pending-queue notifications (docs/behaviour.md, Notifications): digest windows per admin (:mod:`.digests`) and
the digest email (:mod:`.render`). Delivering the outbox is infrastructure
(:mod:`server.infra.outbox`, :mod:`server.infra.mail`).
"""
