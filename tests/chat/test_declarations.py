"""Every chat command is one declaration: an executor and reply templates that exist, declared
in the module of its area next to its executor, collected once by the registry."""

from __future__ import annotations

import inspect

import pytest

from bot.chat.registry import TABLE
from bot.render.templates import TEMPLATES

REPLIES = TEMPLATES / "replies"


@pytest.mark.parametrize("command", TABLE, ids=lambda c: c.key)
def test_every_declaration_has_an_executor_next_to_it(command):
    assert command.executor is not None, f"#{command.name} declares no executor"
    assert inspect.iscoroutinefunction(command.executor), command.key
    module = inspect.getmodule(command.executor)
    assert module is not None and getattr(module, "__name__", "").startswith("bot.chat.")
    declared_there = [v for v in vars(module).values() if v is command]
    assert declared_there, f"#{command.name} is not declared in {module.__name__}"


@pytest.mark.parametrize("command", TABLE, ids=lambda c: c.key)
def test_every_declaration_names_reply_templates_that_exist(command):
    assert command.templates, f"#{command.name} names no reply template"
    for name in command.templates:
        assert (REPLIES / name).is_file(), f"#{command.name}: templates/replies/{name} is missing"


def test_keys_names_and_aliases_are_each_declared_once():
    keys = [c.key for c in TABLE]
    names = [n.casefold() for c in TABLE for n in (c.name, c.alias)]
    assert len(set(keys)) == len(keys) and len(set(names)) == len(names)
