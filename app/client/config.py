"""Where the client finds its server and token: arguments, then the environment
(``TUNEDECK_SERVER``, ``TUNEDECK_AUTH_TOKEN``), then a config file.

The config file is TOML, ``$TUNEDECK_CONFIG`` or ``~/.config/tunedeck/config.toml``::

    server = "https://tunedeck.example.com"
    token = "..."
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SERVER = "http://127.0.0.1:8000"


def config_path() -> Path:
    if explicit := os.environ.get("TUNEDECK_CONFIG"):
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "tunedeck" / "config.toml"


@dataclass(frozen=True)
class ClientConfig:
    server: str
    token: str | None


def read_config_file(path: Path | None = None) -> dict[str, str]:
    path = path or config_path()
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from exc
    return {k: str(v) for k, v in data.items() if k in {"server", "token"} and v}


def resolve(server: str | None = None, token: str | None = None) -> ClientConfig:
    file = read_config_file()
    return ClientConfig(
        server=(server or os.environ.get("TUNEDECK_SERVER") or file.get("server")
                or DEFAULT_SERVER).rstrip("/"),
        token=token or os.environ.get("TUNEDECK_AUTH_TOKEN") or file.get("token") or None,
    )
