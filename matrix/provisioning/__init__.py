"""Provisioning: who must be in which group (membership, sharding), what the groups hold now
(actual), the plan and its schedule over the bot accounts, applying it, the auditor's findings,
join review, the bindings of contacts to roster persons, matching unbound members to the
roster by their 群昵称, and the one authority policy (who may do what on which unit).

May import the earlier stages of ``matrix`` (blueprint, roster, tree, db, models, tables);
never the later stages (``matrix.relay``, ``matrix.summary``), ``bot`` or wechaty."""
