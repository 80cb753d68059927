"""The EA endpoints refuse what they must, before storing anything, and keep what they accept."""

import json
import time

import pytest
from django.test import Client

from ea.models import EaDeal, EaLink
from ea.services import ea_link_rotate
from integrations.mt5.ea import protocol

pytestmark = pytest.mark.django_db


def _send(emulator, body: bytes, *, path=protocol.PUSH_PATH, key_id=None, secret=None, timestamp=None, nonce=None,
          signed_body=None):  # fmt: skip
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or f"nonce-{time.monotonic_ns()}"
    signature = protocol.sign(
        secret or emulator.secret, method="POST", path=path, timestamp=timestamp, nonce=nonce,
        body=body if signed_body is None else signed_body,
    )  # fmt: skip
    headers = {
        protocol.HEADER_KEY: key_id or emulator.key_id,
        protocol.HEADER_TIMESTAMP: timestamp,
        protocol.HEADER_NONCE: nonce,
        protocol.HEADER_SIGNATURE: signature,
    }
    response = Client().generic("POST", path, data=body, content_type="application/json", headers=headers)
    return response.status_code, response.json()


def _push_body(emulator) -> bytes:
    return json.dumps(emulator.build_push()).encode()


def test_a_signed_push_is_stored_with_its_deals(emulator, terminal, ea_key):
    terminal.sim_open_manual("EURUSD", "buy", "0.10")
    status, answer = _send(emulator, _push_body(emulator))
    assert status == 200, answer
    link = EaLink.objects.get(pk=ea_key[0].pk)
    assert link.pushes_accepted == 1
    assert link.ea_version == "1.0.0"
    assert len(link.latest_push["positions"]) == 1
    in_terminal = {d.ticket for d in terminal.history_deals_get(0, terminal.sim_server_time() + 1)}
    assert (
        set(EaDeal.objects.filter(link=link).values_list("ticket", flat=True)) == in_terminal
    )  # deposit + buy
    assert (
        _send(emulator, _push_body(emulator))[0] == 200
    )  # overlapping deals again: still one row per ticket
    assert EaDeal.objects.filter(link=link).count() == len(in_terminal)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"secret": "not-the-secret"}, "Bad signature."),
        ({"key_id": "0000000000000000"}, "Unknown key."),
        ({"timestamp": str(int(time.time()) - 400)}, "away from our clock"),
        ({"signed_body": b'{"altered": true}'}, "Bad signature."),
    ],
)
def test_a_badly_signed_push_is_refused_and_stores_nothing(emulator, ea_key, change, message):
    status, answer = _send(emulator, _push_body(emulator), **change)
    assert status == 401
    assert message in answer["message"]
    assert EaLink.objects.get(pk=ea_key[0].pk).latest_push is None


def test_a_reused_nonce_is_refused(emulator, ea_key):
    body = _push_body(emulator)
    assert _send(emulator, body, nonce="same-nonce-123")[0] == 200
    status, answer = _send(emulator, body, nonce="same-nonce-123")
    assert status == 401
    assert "already used" in answer["message"]


def test_a_rotated_key_stops_the_old_one(emulator, ea_key):
    ea_link_rotate(link=ea_key[0])
    assert _send(emulator, _push_body(emulator))[0] == 401


def test_an_oversize_body_is_refused_before_anything_else(emulator):
    status, _answer = _send(emulator, b"x" * (protocol.MAX_BODY_BYTES + 1))
    assert status == 413


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.pop("positions"), "missing positions"),
        (lambda p: p["account"].update(equity="lots"), "account.equity: expected a number"),
        (lambda p: p.update(protocol=99), "protocol"),
        (lambda p: p["terminal"].update(connected="yes"), "terminal.connected"),
    ],
)
def test_a_malformed_push_is_a_400_with_the_reason_and_stores_nothing(emulator, ea_key, mutate, message):
    payload = emulator.build_push()
    mutate(payload)
    status, answer = _send(emulator, json.dumps(payload).encode())
    assert status == 400
    assert message in answer["message"]
    link = EaLink.objects.get(pk=ea_key[0].pk)
    assert link.latest_push is None
    assert link.pushes_refused == 1
    assert message in link.last_refusal


def test_a_push_for_another_account_is_refused(emulator, ea_key):
    payload = emulator.build_push()
    payload["login"] = 1234
    status, answer = _send(emulator, json.dumps(payload).encode())
    assert status == 403
    assert "9100001" in answer["message"]
    assert EaLink.objects.get(pk=ea_key[0].pk).latest_push is None


def test_not_json_is_a_400(emulator):
    status, answer = _send(emulator, b"{not json")
    assert status == 400
    assert "not JSON" in answer["message"]
