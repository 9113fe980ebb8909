"""The chat layer: the dispatcher (``dispatch``) that turns a group message or room event into
a reply; the command declarations, each next to its executor in the module of its area
(``provision``, ``adopt``, ``review``, ``relay``, ``summary``, ``log``, ``help``), built from ``commands``
and collected in help order by ``registry``; what executors receive (``context``: ``Call``,
``Reply``, the typed ``Services``); flood limits, join handling and the relay runner (the relay
wired to the accounts). Authority is ``matrix.provisioning.authority``'s; the chat layer writes no SQL.

Imports run one way: ``dispatch`` → ``registry`` → area modules → ``context`` → ``commands``;
nothing imports ``dispatch``. May import ``bot.render``, ``bot.config`` and ``matrix``; never
``bot.cli``, ``bot.rehearsal`` or a platform adapter (platforms reach the chat layer only
through ``matrix.platform``)."""
