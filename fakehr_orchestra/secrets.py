"""Names where a name is expected, and secrets kept out of plans and logs.

- `env_name_problem`: an environment variable *name* (a recipe's `env:` keys, `critic.api_key_env`) must be a shell
  identifier, `[A-Za-z_][A-Za-z0-9_]*`; anything else breaks a pasted command, or runs one (`X$(touch /tmp/x)`).
- `looks_like_secret`: a value put where a variable name belongs (`api_key_env: sk-...`) is refused *without being
  echoed*: the message says what it looks like, never what it is.
- URLs carry no credentials: `url_credential_problems` finds every `scheme://user:pw@host` in a recipe (it would be
  copied into plans, argv, scripts and logs), and `redact_url` hides them in anything printed or logged. Both read
  the userinfo up to the *last* `@` of the URL word (a password may hold `@`, `/` or `:`); an `@` that belongs to a
  path or query is read as credentials too, which errs on the safe side (write it %40).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any, Optional

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_PREFIXES = ("sk-", "sk_", "pk-", "rk-", "ghp_", "gho_", "github_pat_", "hf_", "xox", "AKIA", "eyJ", "Bearer ")
# scheme://, then everything up to the last @ of the URL (whitespace and quotes end it)
_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s\"'<>]*@")


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
    """The text with the user:password@ of every URL in it replaced by ***@ (for messages and logs)."""
    return _CREDENTIALS.sub(r"\1***@", str(url))


def has_url_credentials(text: object) -> bool:
    return isinstance(text, str) and bool(_CREDENTIALS.search(text))


def url_credential_problems(data: Any, key: str = "") -> list[tuple[str, str]]:
    """(key, message) for every string in a recipe's data that holds a URL with credentials; the message shows the
    URL redacted, never the secret."""
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in url_credential_problems(v, f"{key}.{k}" if key else str(k))]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in url_credential_problems(v, f"{key}[{i}]")]
    if has_url_credentials(data):
        return [(key, f"{redact_url(data)!r} carries credentials (user:password@) in the URL: they would be copied "
                      "into commands, scripts and logs. Put the key in an environment variable and name it in "
                      "critic.api_key_env (sent as a bearer token); rotate the password if this file was shared "
                      "(an @ that is part of a path or query: write it %40)")]
    return []
