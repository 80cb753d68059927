"""MQL5 cannot be compiled here, so the EA's source is checked against the protocol the server speaks: paths, header
names, every JSON field name, the version and the signature recipe; and its functions stay parallel to the emulator's."""

import re
from pathlib import Path

import pytest

from integrations.mt5.ea import emulator, protocol

SOURCE = (Path(protocol.__file__).parent / "MT5Guard.mq5").read_text()


def _define(name: str) -> str:
    match = re.search(rf'#define\s+{name}\s+"?([^"\n]+?)"?\s*$', SOURCE, re.M)
    assert match, f"#define {name} missing"
    return match.group(1)


def test_paths_and_version_equal_the_servers():
    assert _define("PUSH_PATH") == protocol.PUSH_PATH
    assert _define("COMMANDS_PATH") == protocol.COMMANDS_PATH
    assert _define("RESULT_PATH_HEAD") + "{id}" + _define("RESULT_PATH_TAIL") == protocol.RESULT_PATH_TEMPLATE
    assert int(_define("PROTOCOL_VERSION")) == protocol.PROTOCOL_VERSION
    assert _define("EA_VERSION") == emulator.EA_VERSION


def test_header_names_equal_the_servers():
    assert [
        _define(n) for n in ("HEADER_KEY", "HEADER_TIMESTAMP", "HEADER_NONCE", "HEADER_SIGNATURE")
    ] == list(protocol.HEADERS)


@pytest.mark.parametrize(
    "fields",
    [
        protocol.PUSH_FIELDS,
        protocol.ACCOUNT_FIELDS,
        protocol.TERMINAL_FIELDS,
        protocol.POSITION_FIELDS,
        protocol.DEAL_FIELDS,
        protocol.TICK_FIELDS,
        protocol.SYMBOL_FIELDS,
        protocol.RESULT_FIELDS,
    ],
)
def test_every_json_field_the_server_requires_is_written_by_the_ea(fields):
    written = set(re.findall(r'KV\("(\w+)"', SOURCE))
    assert set(fields) <= written, set(fields) - written


def test_the_commands_fields_the_ea_reads_exist():
    read = set(re.findall(r'JsonRaw\(command, "(\w+)"\)', SOURCE))
    assert read <= set(protocol.COMMAND_FIELDS)
    assert {"id", "ticket", "deadline", "volume"} <= read


def test_the_signature_recipe_is_the_servers():
    recipe = re.search(r"string StringToSign\(.*?\{\s*return\((.*?)\);", SOURCE, re.S)
    assert recipe, "StringToSign missing"
    assert re.sub(r"\s+", "", recipe.group(1)) == (
        'method+"\\n"+path+"\\n"+timestamp+"\\n"+nonce+"\\n"+Sha256Hex(body)'
    )
    assert protocol.string_to_sign(method="POST", path="/p", timestamp="1", nonce="n", body=b"") == (
        "POST\n/p\n1\nn\n" + protocol.body_digest(b"")
    )
    assert "HmacSha256Hex(InpKeySecret, StringToSign(method, path, timestamp, nonce, body))" in SOURCE
    assert "0x36" in SOURCE
    assert "0x5c" in SOURCE


def test_the_ea_functions_are_parallel_to_the_emulators():
    pairs = {
        "OnInit": "start",
        "OnTimer": "on_timer",
        "BuildPush": "build_push",
        "SignedRequest": "signed_request",
        "Push": "push",
        "PollCommands": "poll_commands",
        "ExecuteCommand": "execute_command",
        "PostResult": "post_result",
    }
    for mql, python in pairs.items():
        assert re.search(rf"^\w+\s+{mql}\(", SOURCE, re.M), f"{mql} missing in the EA"
        assert hasattr(emulator.EaEmulator, python), f"{python} missing in the emulator"
    assert "past its deadline" in SOURCE  # both refuse a command after its deadline
