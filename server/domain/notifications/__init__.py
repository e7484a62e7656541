"""Pending-queue notifications (SPEC §6): digest windows per admin (:mod:`.digests`) and
the digest email (:mod:`.render`). Delivering the outbox is infrastructure
(:mod:`server.infra.outbox`, :mod:`server.infra.mail`).
"""
