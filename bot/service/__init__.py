"""The running ``qunmatrix run`` process: accounts, the health endpoint and the operator's
alerts.

May import ``bot.chat``, ``bot.platforms``, ``bot.render`` and ``matrix``; never ``bot.cli``."""
