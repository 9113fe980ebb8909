"""Provisioning: who must be in which group (membership, sharding), what the groups hold now
(actual), the plan and its schedule over the bot accounts, applying it, the auditor's findings,
join review and the bindings of contacts to roster persons.

May import the earlier stages of ``matrix`` (blueprint, roster, tree, db, models, tables) and
``matrix.relay.people`` for office groups; never ``bot`` or wechaty."""
