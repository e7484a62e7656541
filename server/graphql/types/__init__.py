"""The GraphQL object types of the contract, built from domain rows.

Plain fields are copied from the row when the object is made, so GraphQL reads them with
its default resolver; fields that need more data (a user's agents, pending info, an audit
entry's actor) resolve through the request's DataLoaders.

- :mod:`.base`: the contract's enums, ids and ``PageInfo``;
- :mod:`.users`: users, agents, pending info, suggestions, and their connections;
- :mod:`.activity`: app usage, a user's activity summary and its days;
- :mod:`.account`: the admin, the account, the activity report and queue metrics;
- :mod:`.history`: the audit trail and the settings history, with who acted;
- :mod:`.payloads`: mutations' inputs and payloads, ``UserError`` and the live queue event.

Callers import the submodule they need; nothing is re-exported here.
"""
