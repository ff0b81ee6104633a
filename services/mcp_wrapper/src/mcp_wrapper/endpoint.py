"""Where toolman is: the parsed MCP_TOOLMAN_SERVER_URL."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str
    port: int
    target: str  # path and query, as sent on the request line
    host_header: str

    @property
    def display(self) -> str:
        return f"{self.scheme}://{self.host_header}{self.target}"

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ValueError("the scheme must be http or https")
        if not parts.hostname:
            raise ValueError("there is no host")
        if parts.username or parts.password:
            raise ValueError("credentials in the URL are not supported; use MCP_TOOLMAN_TOKEN")
        port = parts.port or (443 if parts.scheme == "https" else 80)  # raises on a bad port
        host = parts.hostname
        shown = f"[{host}]" if ":" in host else host
        default_port = (parts.scheme == "https" and port == 443) or port == 80
        host_header = shown if default_port else f"{shown}:{port}"
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(parts.scheme, host, port, target, host_header)
