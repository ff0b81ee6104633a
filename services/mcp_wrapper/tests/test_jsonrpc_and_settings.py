"""Message classification and settings validation: the rules the forwarder relies on."""

from __future__ import annotations

import pytest

from mcp_wrapper import jsonrpc
from mcp_wrapper.errors import ConfigError
from mcp_wrapper.settings import Settings


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ({"jsonrpc": "2.0", "id": 1, "method": "ping"}, jsonrpc.Kind.REQUEST),
        ({"jsonrpc": "2.0", "id": "a", "method": "ping"}, jsonrpc.Kind.REQUEST),
        ({"jsonrpc": "2.0", "method": "notifications/initialized"}, jsonrpc.Kind.NOTIFICATION),
        ({"jsonrpc": "2.0", "id": 3, "result": {}}, jsonrpc.Kind.RESPONSE),
        ({"jsonrpc": "2.0", "id": 3, "error": {"code": 1, "message": "x"}}, jsonrpc.Kind.RESPONSE),
    ],
)
def test_classify(message: object, kind: jsonrpc.Kind) -> None:
    assert jsonrpc.classify(message) is kind


@pytest.mark.parametrize(
    ("message", "request_id"),
    [
        ([], None),
        ("ping", None),
        ({"jsonrpc": "2.0", "id": None, "method": "ping"}, None),
        ({"jsonrpc": "2.0", "id": True, "method": "ping"}, None),
        ({"jsonrpc": "2.0", "id": 4, "method": 5}, 4),
        ({"jsonrpc": "2.0", "id": 4}, 4),
    ],
)
def test_invalid_messages_keep_a_usable_id(message: object, request_id: object) -> None:
    with pytest.raises(jsonrpc.InvalidMessage) as caught:
        jsonrpc.classify(message)
    assert caught.value.request_id == request_id


def test_encoded_line_is_one_line_even_with_newlines_inside() -> None:
    line = jsonrpc.encode_line({"text": "a\nb\r\u2028c", "é": 1})
    assert line.count(b"\n") == 1
    assert line.endswith(b"\n")


def test_ids_1_and_string_1_are_different_keys() -> None:
    assert jsonrpc.id_key(1) != jsonrpc.id_key("1")


def test_settings_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.url == "http://localhost:3000/mcp"
    assert settings.timeout == 30
    assert settings.debug is False
    assert settings.token is None


def test_settings_values_and_token_not_in_repr() -> None:
    settings = Settings.from_env(
        {
            "MCP_TOOLMAN_SERVER_URL": "https://[::1]:8443/mcp?x=1",
            "MCP_WRAPPER_TIMEOUT": "2.5",
            "MCP_WRAPPER_DEBUG": "TRUE",
            "MCP_TOOLMAN_TOKEN": " tok ",
        }
    )
    assert settings.timeout == 2.5
    assert settings.debug is True
    assert settings.token == "tok"
    assert "tok" not in repr(settings).replace("toolman", "")
    endpoint = settings.endpoint
    assert (endpoint.host, endpoint.port, endpoint.target) == ("::1", 8443, "/mcp?x=1")
    assert endpoint.host_header == "[::1]:8443"


@pytest.mark.parametrize(
    "env",
    [
        {"MCP_WRAPPER_TIMEOUT": "0"},
        {"MCP_WRAPPER_TIMEOUT": "inf"},
        {"MCP_TOOLMAN_SERVER_URL": "ftp://x/mcp"},
        {"MCP_TOOLMAN_SERVER_URL": "http://localhost:99999/mcp"},
        {"MCP_TOOLMAN_TOKEN": "a\r\nX-Injected: 1"},
    ],
)
def test_settings_reject(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env(env)
