"""Where a target was planned: the sandbox or not, and the target's locations (base URLs, a
feed's directory; never credentials). A saved plan records it per target and is applied there
alone."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["LOCAL_SANDBOX", "Endpoint", "endpoint_of"]

#: the sandbox started by the command itself (``--sandbox``): its port changes every run
LOCAL_SANDBOX = "local"


def _location(value: Any) -> str:
    """A setting's value as a location: a URL without user info, query or fragment (which
    could carry a credential), anything else as written."""
    text = str(value)
    if "://" not in text:
        return text
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return text.split("?", 1)[0].split("#", 1)[0]
    netloc = (f"[{host}]" if ":" in host else host) + port
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def _is_location(key: str) -> bool:
    return key.endswith(("_url", "_host")) or key == "directory"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a target was planned: ``sandbox`` is '' for the platform itself, ``local`` for
    the sandbox a command starts (``--sandbox``), else the URL of a running sandbox
    (``--sandbox-url``); ``urls``: the target's locations (base URLs, a feed's directory),
    leaving out those the local sandbox supplies (its port is new every run)."""

    sandbox: str = ""
    urls: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        own = ", ".join(f"{k}={v}" for k, v in sorted(self.urls.items()))
        if self.sandbox == LOCAL_SANDBOX:
            where = "the local sandbox (--sandbox)"
        elif self.sandbox:
            where = f"the sandbox at {self.sandbox} (--sandbox-url)"
        else:
            return own or "its configured location"
        return f"{where}, {own}" if own else where

    def how(self) -> str:
        """How an apply gets here."""
        if self.sandbox == LOCAL_SANDBOX:
            return "apply it with --sandbox"
        if self.sandbox:
            return f"apply it with --sandbox-url {self.sandbox}"
        return "apply it without --sandbox or --sandbox-url, with the config it was planned from"

    def as_dict(self) -> dict[str, Any]:
        return {"sandbox": self.sandbox, "urls": dict(sorted(self.urls.items()))}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Endpoint:
        urls = d.get("urls", {})
        if not isinstance(d.get("sandbox", ""), str) or not isinstance(urls, Mapping):
            raise TypeError("planned_at: expected {sandbox: string, urls: object}")
        return cls(d.get("sandbox", ""), {str(k): str(v) for k, v in urls.items()})


def endpoint_of(
    settings: Mapping[str, Any], *, sandbox: str = "", supplied: Iterable[str] = ()
) -> Endpoint:
    """The :class:`Endpoint` of a target with these (effective) settings; ``supplied``: the
    settings a local sandbox put there (not recorded)."""
    skip = set(supplied) if sandbox == LOCAL_SANDBOX else set()
    urls = {
        k: _location(v)
        for k, v in settings.items()
        if _is_location(k) and k not in skip and v not in (None, "")
    }
    return Endpoint(sandbox, urls)
