"""The rules of the product, free of Starlette, Strawberry and Textual.

Tables and enums (:mod:`.models`), expected failures (:mod:`.errors`), queue events
(:mod:`.events`); admission (:mod:`.admission`: a pure ``decide`` and its ``apply``), the
admin actions (:mod:`.actions`) over what every change shares (:mod:`.changes`); activity
(:mod:`.activity`), reads for the API (:mod:`.reads`), likely matches (:mod:`.suggestions`),
digests (:mod:`.notifications`), retention, queue metrics, accounts and credentials
(:mod:`.accounts`, :mod:`.auth`). Functions take an ``AsyncSession`` and run in the
caller's transaction; what needs several transactions or settings takes the small
Protocols of :mod:`.ports`, which the infrastructure satisfies.
"""
