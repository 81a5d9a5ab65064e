"""The prompt as the model sees it. Recipes keep the text as ms-swift receives it on the command line; ms-swift turns
each literal backslash-n into a newline (TemplateArguments.__post_init__). Everything else that builds a prompt (data
export, evaluation) goes through `effective` so it asks exactly what training taught.
"""

from __future__ import annotations

from typing import Any


def effective(text: str | None) -> str | None:
    """The text ms-swift actually uses for --system / --response_prefix."""
    return None if text is None else text.replace("\\n", "\n")


def chat_messages(system: str | None, user: str) -> list[dict[str, Any]]:
    """System (if any) + user turn; the user text carries one <image> placeholder per image."""
    messages: list[dict[str, Any]] = []
    sys_text = effective(system)
    if sys_text:
        messages.append({"role": "system", "content": sys_text})
    messages.append({"role": "user", "content": effective(user)})
    return messages
