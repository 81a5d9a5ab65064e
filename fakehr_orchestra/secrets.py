"""Names where a name is expected, and secrets kept out of plans and logs (issue 19 item 6).

- `env_name_problem`: an environment variable *name* (a recipe's `env:` keys, `critic.api_key_env`) must be a shell
  identifier, `[A-Za-z_][A-Za-z0-9_]*`; anything else breaks a pasted command, or runs one (`X$(touch /tmp/x)`).
- `looks_like_secret`: a value put where a variable name belongs (`api_key_env: sk-...`) is refused *without being
  echoed*: the message says what it looks like, never what it is.
- `redact_url`: `https://user:pass@host/v1` -> `https://***@host/v1` for anything printed or logged.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Optional

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_PREFIXES = ("sk-", "sk_", "pk-", "rk-", "ghp_", "gho_", "github_pat_", "hf_", "xox", "AKIA", "eyJ", "Bearer ")
_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")


def is_env_name(name: object) -> bool:
    return isinstance(name, str) and bool(ENV_NAME.match(name))


def _entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(text)
    return -sum(c / len(text) * math.log2(c / len(text)) for c in counts.values())


def looks_like_secret(value: str) -> bool:
    """A key or token rather than a variable name: a known key prefix, or long, mixed-case-and-digits and
    high-entropy (environment variable names are short, upper-case words: OPENAI_API_KEY)."""
    if value.startswith(_SECRET_PREFIXES):
        return True
    if len(value) >= 24 and any(c.isdigit() for c in value) and any(c.islower() for c in value) \
            and any(c.isupper() for c in value) and _entropy(value) > 3.5:
        return True
    return False


def env_name_problem(name: object, what: str = "an environment variable name") -> Optional[str]:
    """Why `name` cannot be used as an environment variable name (None when it can). A value that looks like a
    secret is described, never repeated."""
    if not isinstance(name, str):
        return f"{what} must be text, got {type(name).__name__}"
    if isinstance(name, str) and looks_like_secret(name):
        return (f"{what} holds what looks like a secret key or token ({len(name)} characters, not shown), not a "
                "variable name: put the key in an environment variable (export CRITIC_API_KEY=...) and write its "
                "name here (e.g. CRITIC_API_KEY); rotate the key if this file was shared")
    if not ENV_NAME.match(name):
        shown = name if len(name) <= 40 else name[:37] + "..."
        return (f"{what} {shown!r} is not a shell identifier ([A-Za-z_][A-Za-z0-9_]*: letters, digits and _, not "
                "starting with a digit)")
    return None


def redact_url(url: object) -> str:
    """The URL with any user:password@ credentials replaced by ***@ (for messages and logs)."""
    return _CREDENTIALS.sub(r"\1***@", str(url))
