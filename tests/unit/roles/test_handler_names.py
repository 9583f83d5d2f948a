"""Handlers are global to a play: every role's handler names and listen topics start with its own name,
so that a notification from another role (or a playbook) with the same words cannot run them, and every
notify in a role reaches one of its own handlers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[3] / "roles"


def as_list(value) -> list:
    return [] if value is None else value if isinstance(value, list) else [value]


def tasks_of(items) -> list[dict]:
    """The tasks of a task or handler file, those inside block/rescue/always included."""
    found = []
    for item in items or []:
        found.append(item)
        for key in ("block", "rescue", "always"):
            found += tasks_of(item.get(key))
    return found


def handlers(role: Path) -> list[dict]:
    return [task for path in sorted((role / "handlers").glob("*.y*ml"))
            for task in tasks_of(yaml.safe_load(path.read_text())) if "block" not in task]


def unprefixed(role: Path) -> list[str]:
    """Handler names and listen topics of the role that do not start with its name (then a separator)."""
    prefix = re.compile(rf"^{re.escape(role.name)}\b")
    names = [handler.get("name", "") for handler in handlers(role)]
    topics = [topic for handler in handlers(role) for topic in as_list(handler.get("listen"))]
    return [f"{kind} {value!r}" for kind, values in (("name", names), ("listen", topics))
            for value in values if not prefix.match(value)]


ROLES_WITH_HANDLERS = sorted(role.name for role in ROLES.iterdir() if (role / "handlers").is_dir())


def test_the_roles_with_handlers_are_found():
    # the parametrized tests below would pass on an empty list
    assert "node_tuning" in ROLES_WITH_HANDLERS


@pytest.mark.parametrize("role", ROLES_WITH_HANDLERS)
def test_handler_names_and_listen_topics_start_with_the_role_name(role):
    assert unprefixed(ROLES / role) == [], f"prefix them with '{role} | ' (names) and '{role} ' (topics)"


@pytest.mark.parametrize("role", ROLES_WITH_HANDLERS)
def test_every_notify_reaches_a_handler_of_the_role(role):
    known = {handler.get("name") for handler in handlers(ROLES / role)}
    known |= {topic for handler in handlers(ROLES / role) for topic in as_list(handler.get("listen"))}
    notified = {(path.name, topic) for path in sorted((ROLES / role / "tasks").rglob("*.y*ml"))
                for task in tasks_of(yaml.safe_load(path.read_text())) for topic in as_list(task.get("notify"))}
    assert notified, f"{role} has handlers that nothing notifies"
    assert [(file, topic) for file, topic in sorted(notified) if topic not in known] == []
