"""Structured returns (填报): a form goes down the tree as a notice, each child unit answers it
once (``#填``, the latest answer winning until the deadline), and offices read one row per unit
of their own subtree.

=========================  ==========================================================
``#填报 标题 字段 … 截止 …``  ``forms.issue_form`` → ``FormIssued`` (the notice's plan and the id F3)
``#填 F3 值1 值2 …``         ``answers.parse_answer`` + ``answers.record_answers`` (a batch, one transaction)
``#进度 F3``                ``table.form_progress`` → who has answered, per level
``#汇总 F3 xlsx``           ``table.form_table`` → ``FormTable`` (one row per unit)
=========================  ==========================================================

The form rides the relay: its notice is planned, paced, held for #确认, withdrawn and reminded
about by ``matrix.relay``; an answer counts as the unit's receipt of that notice, so the relay's
reminders and escalation go to the units that have not answered. May import the top-level
modules, ``matrix.provisioning`` and ``matrix.relay``; never ``bot``, ``wechaty`` or
``matrix.summary``.
"""
