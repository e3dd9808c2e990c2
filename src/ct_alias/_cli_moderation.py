"""``ct-alias serve --moderate RULE[=SETTING]``: the shipped moderators, from flags or the env."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from ._cli_config import BadValue, env_value
from .errors import InvalidArgument

if TYPE_CHECKING:
    from .moderation import Moderator

__all__ = ["RULES", "moderators_from"]

#: The rules ``--moderate`` takes, and what their setting is.
RULES: Final = {
    "attachment-types": "allowed types, comma-separated (default: pictures, PDF, plain text)",
    "attachment-size": "the largest attachment in bytes (default 10 MiB)",
    "contact-details": "flag (default) or refuse",
}


def moderators_from(values: list[str] | None) -> list[Moderator]:
    """The moderators ``--moderate`` (or ``CT_ALIAS_MODERATE``, ``;``-separated) asks for.

    Raises:
        BadValue: an unknown rule, or a setting the rule cannot use.
    """
    if not values:
        variable = env_value("CT_ALIAS_MODERATE")
        values = [v for v in (variable or "").split(";") if v.strip()]
    from .moderation import Action  # noqa: PLC0415 - the relay's modules load with serve
    from .moderators import AttachmentSize, AttachmentTypes, ContactDetails  # noqa: PLC0415

    found: list[Moderator] = []
    for value in values:
        rule, equals, setting = (part.strip() for part in value.partition("="))
        try:
            if rule == "attachment-types":
                allowed = [t for t in setting.split(",") if t.strip()]
                found.append(AttachmentTypes(allowed) if equals else AttachmentTypes())
            elif rule == "attachment-size":
                found.append(AttachmentSize(int(setting)) if equals else AttachmentSize())
            elif rule == "contact-details":
                action = Action(setting) if equals else Action.FLAG
                found.append(ContactDetails(action=action))
            else:
                known = ", ".join(RULES)
                raise BadValue(f"--moderate: unknown rule {rule!r} (known: {known})")
        except (InvalidArgument, ValueError) as exc:
            if isinstance(exc, BadValue):
                raise
            raise BadValue(f"--moderate {rule}: {RULES[rule]}") from None
    return found
