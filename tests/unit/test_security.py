"""Access-control helpers (app/core/security.py): pure functions, no server."""

from __future__ import annotations

import pytest

from app.core import security
from app.core.config import Settings

KEY = security.signing_key("t" * 40)


@pytest.mark.parametrize("host,token,refused", [
    ("127.0.0.1", "", False), ("localhost", "", False), ("::1", "", False),
    ("0.0.0.0", "", True), ("192.168.1.5", "", True), ("0.0.0.0", "x" * 40, False),
])
def test_bind_refusal(host, token, refused):
    reason = security.bind_refusal(host, token)
    assert (reason is not None) == refused
    if refused:
        assert "TUNEDECK_AUTH_TOKEN" in reason


def test_settings_refuse_open_host_without_token():
    with pytest.raises(ValueError, match="TUNEDECK_AUTH_TOKEN"):
        Settings(host="0.0.0.0", auth_token="")
    with pytest.raises(ValueError, match="placeholder"):
        Settings(host="0.0.0.0", auth_token="changeme")


def test_allowed_hosts():
    local = security.allowed_hosts(Settings())
    assert {"localhost", "127.0.0.1"} <= set(local) and "*" not in local
    named = security.allowed_hosts(Settings(host="10.0.0.2", auth_token="x" * 40,
                                            allowed_hosts=["td.example.com"]))
    assert {"10.0.0.2", "td.example.com", "localhost"} <= set(named)
    assert security.allowed_hosts(
        Settings(host="0.0.0.0", auth_token="x" * 40, allowed_hosts=[])) == ["*"]


def test_session_round_trip_tamper_and_expiry():
    cookie = security.new_session(KEY, now=1000)
    sid = security.session_id(KEY, cookie, now=1010)
    assert sid
    assert security.session_id(KEY, cookie, now=1000 + security.SESSION_MAX_AGE_S + 1) is None
    assert security.session_id(security.signing_key("other" * 8), cookie, now=1010) is None
    issued, nonce, signature = cookie.split(".")
    assert security.session_id(KEY, f"{issued}.{nonce}x.{signature}", now=1010) is None
    assert security.session_id(KEY, f"999.{nonce}.{signature}", now=1010) is None
    for junk in ("", "abc", "1.2", "..", "x.y.z"):
        assert security.session_id(KEY, junk, now=1010) is None


def test_csrf_token_is_bound_to_the_session():
    one = security.csrf_token(KEY, "a")
    assert one == security.csrf_token(KEY, "a") != security.csrf_token(KEY, "b")


def test_token_and_bearer_parsing():
    assert security.token_matches("abc", "abc")
    assert not security.token_matches("abd", "abc")
    assert not security.token_matches("", "")
    assert security.bearer_token("Bearer xyz") == "xyz"
    assert security.bearer_token("bearer  xyz ") == "xyz"
    assert security.bearer_token("Basic xyz") is None
    assert security.bearer_token("Bearer ") is None


@pytest.mark.parametrize("headers,refused", [
    ({"host": "127.0.0.1:8000"}, False),  # curl: no Origin, no Referer
    ({"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:8000"}, False),
    ({"host": "127.0.0.1:8000", "referer": "http://127.0.0.1:8000/runs/1"}, False),
    ({"host": "127.0.0.1:8000", "origin": "http://evil.example"}, True),
    ({"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:9999"}, True),
    ({"host": "127.0.0.1:8000", "origin": "null"}, True),
    ({"host": "127.0.0.1:8000", "referer": "https://evil.example/x"}, True),
    ({"host": "127.0.0.1:8000", "sec-fetch-site": "cross-site"}, True),
])
def test_cross_site_reason(headers, refused):
    assert (security.cross_site_reason("POST", headers) is not None) == refused
    assert security.cross_site_reason("GET", headers) is None


def test_cross_site_reason_trusts_configured_names_behind_a_proxy():
    headers = {"host": "127.0.0.1:8000", "origin": "https://td.example.com"}
    assert security.cross_site_reason("POST", headers) is not None
    assert security.cross_site_reason("POST", headers, frozenset({"td.example.com"})) is None
    assert security.cross_site_reason(
        "POST", {**headers, "origin": "https://evil.example"}, frozenset({"td.example.com"}))


@pytest.mark.parametrize("target,expected", [
    (None, "/"), ("/runs/3?x=1", "/runs/3?x=1"), ("//evil.example", "/"),
    ("https://evil.example", "/"), ("/\\evil", "/"), ("runs", "/"),
])
def test_safe_next(target, expected):
    assert security.safe_next(target) == expected


def test_cookie_flags():
    header = security.session_cookie_header("v", secure=True)
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Secure" in header
    assert "Secure" not in security.session_cookie_header("v", secure=False)
