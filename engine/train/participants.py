"""Participants of a shared server: who acts on a run, who owns it, and the instructor.

A participant's name is a label shown in the run list, not a credential and never part of a
path. The instructor is whoever presents the token the server was started with
(``SSL_STUDIO_INSTRUCTOR_TOKEN``); the instructor may act on every run, a participant only on
their own.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

#: longest name kept (longer ones are cut)
MAX_NAME_CHARS = 40


def normalise_name(name: object) -> str:
    """A participant's name as shown: printable characters only, whitespace collapsed to
    single spaces, stripped, at most :data:`MAX_NAME_CHARS` characters (``""`` = anonymous)."""
    text = name if isinstance(name, str) else ""
    text = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(text.split())[:MAX_NAME_CHARS].rstrip()


@dataclass(frozen=True)
class Actor:
    """Whoever asks for something: a participant's name, or the instructor."""

    name: str
    instructor: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", normalise_name(self.name))
        object.__setattr__(self, "instructor", self.instructor is True)

    def label(self) -> str:
        """The name for messages (``"anonymous"`` for an empty name)."""
        return self.name or "anonymous"


#: what the registry's old ``start`` acts as: no name, not the instructor
ANONYMOUS = Actor("")


def token_matches(token: object, configured: str) -> bool:
    """Whether ``token`` is the instructor's token; never true when none is configured.
    Compared in constant time."""
    if not configured or not isinstance(token, str) or not token:
        return False
    return hmac.compare_digest(token.encode(), configured.encode())


def may_act(actor: Actor, owner: str) -> bool:
    """The instructor may act on any run; a participant only on runs with their own name."""
    return actor.instructor or actor.name == normalise_name(owner)


def refusal(run_id: str, owner: str, verb: str) -> PermissionError:
    """The error for a participant acting on someone else's run, one readable line."""
    whose = f"{owner}'s run" if owner else "a run without an owner"
    return PermissionError(
        f"run {run_id} is {whose}: only its owner or the instructor may {verb} it"
    )
