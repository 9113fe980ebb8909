"""Rehearsals on the simulated WeChat: the stage (a whole matrix with a virtual clock), building
its groups, and the console's transcript format.

May import ``bot.chat``, ``bot.platforms``, ``bot.render``, ``bot.service`` and ``matrix``;
never ``bot.cli``."""
