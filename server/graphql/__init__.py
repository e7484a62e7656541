"""The GraphQL edge: the schema (:mod:`.schema`, with :mod:`.queries`, :mod:`.mutations`,
:mod:`.subscriptions` and :mod:`.types`), the per-request context and its DataLoaders,
the HTTP and websocket view (:mod:`.http`, :mod:`.live`), live event views shared by
subscribers (:mod:`.feed`), the response cache, and the limits on hostile documents."""
