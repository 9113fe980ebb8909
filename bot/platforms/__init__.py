"""Platforms behind the ``matrix.platform`` port: the Wechaty adapter (with the python-wechaty
0.10.7 compatibility shim, in ``wechaty_compat`` alone), the simulated WeChat used by tests,
the demo and the console, the in-process puppet and the login QR code.

May import ``matrix.platform`` and the rest of ``matrix``; never ``bot.chat`` or ``bot.cli``."""
