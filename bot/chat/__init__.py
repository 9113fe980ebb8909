"""The chat layer: the dispatcher that turns a group message or room event into a reply, the
command declarations and their executors, one module per area (provision, review, relay,
summary, log), flood limits, join handling and the relay runner (the relay wired to the accounts).

May import ``bot.render``, ``bot.config`` and ``matrix``; never ``bot.cli``,
``bot.rehearsal`` or a platform adapter (platforms reach the chat layer only through
``matrix.platform``)."""
