"""Turning data into what people read: the Jinja environment over ``templates/`` and the writers
for the text, CSV, Markdown, HTML and XLSX forms of summaries, plans, findings and the audit log.

May import ``matrix``; never ``bot.chat``, ``bot.cli`` or a platform."""
