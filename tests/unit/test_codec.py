"""Payload encryption: the key ring and its settings, the AES-256-GCM codec (rotation,
tampering, payloads written before encryption), failures encrypted too, and the codec server
the Web UI calls (round trip over HTTP, token, CORS, bad bodies)."""

from __future__ import annotations

import asyncio
import base64
import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import uvicorn
from google.protobuf import json_format
from starlette.applications import Starlette
from temporalio.api.common.v1 import Memo, Payload, Payloads
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import History, HistoryEvent
from temporalio.exceptions import ApplicationError

from workers.cli import run
from workers.client import connect
from workers.codec import (
    ENCODING,
    ENV_KEYS,
    ENV_KEYS_FILE,
    KEY_ID,
    EncryptionCodec,
    EncryptionKeyError,
    EncryptionSettings,
    KeyRing,
    PayloadDecryptionError,
    data_converter,
    decode_message,
    generate_key_line,
    load_key_ring,
    write_key_file,
)
from workers.codec_server import (
    ALLOW_HEADERS,
    MAX_BODY,
    CodecServerError,
    CodecServerSettings,
    build_app,
    load_token,
)
from workers.devserver import free_port, wait_for_port
from workers.settings import TemporalSettings

KEY_A = bytes(range(32))
KEY_B = bytes(range(32, 64))
A = KeyRing((("A", KEY_A),))
B = KeyRing((("B", KEY_B),))
BA = KeyRing((("B", KEY_B), ("A", KEY_A)))
SECRET = "jane.doe@example.com"


def plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=f'"{text}"'.encode())


def line(kid: str, key: bytes) -> str:
    return f"{kid}:{base64.b64encode(key).decode()}"


# -- key ring and settings ------------------------------------------------------------------


def test_key_ring_lists_keys_newest_first_by_comma_or_line() -> None:
    ring = KeyRing.parse(f"{line('B', KEY_B)}, {line('A', KEY_A)}")
    assert ring.current == "B" and ring.kids == ["B", "A"]
    from_file = KeyRing.parse(f"# rotated 2026-11\n{line('B', KEY_B)}\n\n{line('A', KEY_A)}\n")
    assert from_file == ring


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "holds no key"),
        ("justakey", "entry 1 is not kid:base64key"),
        ("A:not base64!", "key 'A' is not valid base64"),
        (line("A", b"short"), "key 'A': must be 32 bytes, not 5"),
        (f"{line('A', KEY_A)},{line('A', KEY_B)}", "key id 'A' is listed twice"),
        (line("a b", KEY_A), "key id 'a b': use 1-64 letters"),
    ],
)
def test_a_bad_key_setting_is_one_line_naming_it_and_never_the_key(text: str, says: str) -> None:
    with pytest.raises(EncryptionKeyError) as e:
        KeyRing.parse(text)
    assert str(e.value).startswith(f"{ENV_KEYS}: ") and says in str(e.value)
    assert "\n" not in str(e.value)
    assert base64.b64encode(KEY_A).decode() not in str(e.value)


def test_no_key_configured_says_how_to_set_one() -> None:
    with pytest.raises(EncryptionKeyError) as e:
        load_key_ring(EncryptionSettings(encryption_keys=None, encryption_keys_file=None))
    assert f"set {ENV_KEYS}=kid:base64key" in str(e.value)
    assert ENV_KEYS_FILE in str(e.value) and "retailflow keys new" in str(e.value)


async def test_connect_refuses_without_a_key_before_dialling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_KEYS, "")
    monkeypatch.setenv(ENV_KEYS_FILE, "")
    with pytest.raises(EncryptionKeyError, match=r"^no payload encryption key: set "):
        await connect(TemporalSettings(address="127.0.0.1:1"))  # nothing listens there


def test_keys_from_a_file_written_for_its_owner_only(tmp_path: Path) -> None:
    path = write_key_file(tmp_path / "state" / "keys", kid="demo")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ring = load_key_ring(EncryptionSettings(encryption_keys=None, encryption_keys_file=str(path)))
    assert ring.kids == ["demo"]
    assert write_key_file(path, kid="other").read_text() == path.read_text()  # kept, not replaced


def test_keys_file_missing_or_both_settings_refused(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(EncryptionKeyError, match=f"{ENV_KEYS_FILE}: cannot read {missing}"):
        load_key_ring(EncryptionSettings(encryption_keys=None, encryption_keys_file=str(missing)))
    both = EncryptionSettings(
        encryption_keys=line("A", KEY_A),  # type: ignore[arg-type]
        encryption_keys_file=str(missing),
    )
    with pytest.raises(EncryptionKeyError, match="not both"):
        load_key_ring(both)


def test_generated_key_lines_parse_and_differ() -> None:
    first, second = generate_key_line("k1"), generate_key_line("k1")
    assert first != second
    ring = KeyRing.parse(first)
    assert ring.kids == ["k1"] and len(ring.keys[0][1]) == 32
    assert KeyRing.parse(generate_key_line()).current.startswith("k20")


def test_keys_new_cli_prints_a_usable_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["keys", "new", "--kid", "k2027"]) == 0
    assert KeyRing.parse(capsys.readouterr().out.strip()).kids == ["k2027"]
    with pytest.raises(SystemExit):
        run(["keys", "new", "--kid"])
    assert run(["keys", "new", "--kid", "bad:kid"]) == 2
    assert "--kid: key id 'bad:kid'" in capsys.readouterr().err


# -- the codec --------------------------------------------------------------------------------


async def test_encrypted_payload_shape_and_round_trip() -> None:
    codec = EncryptionCodec(A)
    original = plain(SECRET)
    (sealed,) = await codec.encode([original])
    assert sealed.metadata["encoding"] == ENCODING and sealed.metadata[KEY_ID] == b"A"
    assert SECRET.encode() not in sealed.SerializeToString()
    assert len(sealed.data) == 12 + len(original.SerializeToString()) + 16
    (again,) = await codec.encode([original])
    assert again.data[:12] != sealed.data[:12]  # a fresh nonce each time
    assert await codec.decode([sealed, again]) == [original, original]


async def test_unencrypted_payloads_pass_through_and_encrypted_ones_are_not_sealed_twice() -> None:
    codec = EncryptionCodec(A)
    old = plain("written before encryption")
    assert await codec.decode([old]) == [old]
    (sealed,) = await codec.encode([old])
    assert await codec.encode([sealed]) == [sealed]


async def test_rotation_new_key_encrypts_old_key_still_decrypts() -> None:
    (under_a,) = await EncryptionCodec(A).encode([plain(SECRET)])
    rotated = EncryptionCodec(BA)
    assert await rotated.decode([under_a]) == [plain(SECRET)]
    (under_b,) = await rotated.encode([plain(SECRET)])
    assert under_b.metadata[KEY_ID] == b"B"
    with pytest.raises(PayloadDecryptionError) as e:
        await EncryptionCodec(B).decode([under_a])
    assert "key id 'A', which is not configured (keys: B)" in str(e.value)


async def test_altered_payload_or_wrong_key_under_a_kid_is_refused_naming_the_kid() -> None:
    (sealed,) = await EncryptionCodec(A).encode([plain(SECRET)])
    tampered = Payload()
    tampered.CopyFrom(sealed)
    tampered.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    impostor = EncryptionCodec(KeyRing((("A", KEY_B),)))
    truncated = Payload(metadata=dict(sealed.metadata), data=sealed.data[:20])
    for codec, payload in (
        (EncryptionCodec(A), tampered),
        (impostor, sealed),
        (impostor, truncated),
    ):
        with pytest.raises(PayloadDecryptionError, match="key id 'A' does not decrypt"):
            await codec.decode([payload])


async def test_failure_messages_and_stack_traces_are_encrypted() -> None:
    converter = data_converter(A)
    failure = Failure()
    try:
        raise ApplicationError(f"card of {SECRET} declined", SECRET, type="Declined")
    except ApplicationError as err:
        await converter.encode_failure(err, failure)
    assert SECRET.encode() not in failure.SerializeToString()
    assert failure.encoded_attributes.metadata[KEY_ID] == b"A"
    decoded = await converter.decode_failure(failure)
    assert isinstance(decoded, ApplicationError) and SECRET in str(decoded)
    assert decoded.details == (SECRET,)


async def test_decode_message_opens_every_payload_of_a_history() -> None:
    codec = EncryptionCodec(A)
    history = History(events=[HistoryEvent(event_id=1), HistoryEvent(event_id=2)])
    started = history.events[0].workflow_execution_started_event_attributes
    started.input.CopyFrom(Payloads(payloads=await codec.encode([plain(SECRET)])))
    started.memo.CopyFrom(Memo(fields={"note": (await codec.encode([plain("memo " + SECRET)]))[0]}))
    failed = history.events[1].workflow_execution_failed_event_attributes
    failed.failure.encoded_attributes.CopyFrom((await codec.encode([plain("why")]))[0])
    assert SECRET.encode() not in history.SerializeToString()
    await decode_message(history, codec)
    assert started.input.payloads[0] == plain(SECRET)
    assert started.memo.fields["note"] == plain("memo " + SECRET)
    assert failed.failure.encoded_attributes == plain("why")


# -- the codec server -------------------------------------------------------------------------

TOKEN = "codec-token-123"
UI = "http://localhost:8233"


@pytest_asyncio.fixture
async def codec_url() -> AsyncIterator[str]:
    async with served(build_app(EncryptionCodec(BA), token=TOKEN)) as url:
        yield url


class served:
    """The app on a real HTTP port (uvicorn), for the duration of an `async with`."""

    def __init__(self, app: Starlette) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        )

    async def __aenter__(self) -> str:
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        await self.task


def body(*payloads: Payload) -> dict[str, object]:
    return json_format.MessageToDict(Payloads(payloads=payloads))


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Namespace": "default"}


async def test_codec_server_round_trip_over_http(codec_url: str) -> None:
    async with httpx.AsyncClient(base_url=codec_url) as http:
        encoded = await http.post("/encode", json=body(plain(SECRET)), headers=auth())
        assert encoded.status_code == 200, encoded.text
        assert SECRET not in encoded.text
        sealed = json_format.ParseDict(encoded.json(), Payloads()).payloads[0]
        assert sealed.metadata[KEY_ID] == b"B"
        # What the worker wrote under the older key decodes too; the CLI's templated path.
        (under_a,) = await EncryptionCodec(A).encode([plain("old " + SECRET)])
        decoded = await http.post(
            "/default/decode", json=body(sealed, under_a, plain("clear")), headers=auth()
        )
    assert decoded.status_code == 200, decoded.text
    assert json_format.ParseDict(decoded.json(), Payloads()).payloads == [
        plain(SECRET),
        plain("old " + SECRET),
        plain("clear"),
    ]


async def test_codec_server_refuses_without_the_right_token(codec_url: str) -> None:
    async with httpx.AsyncClient(base_url=codec_url) as http:
        none = await http.post("/decode", json=body(plain("x")), headers={"Origin": UI})
        wrong = await http.post("/decode", json=body(plain("x")), headers=auth("guess"))
        scheme = await http.post("/encode", json=body(), headers={"Authorization": TOKEN})
    for answer in (none, wrong, scheme):
        assert answer.status_code == 401
        assert answer.json() == {
            "error": "missing or wrong bearer token (Authorization: Bearer <token>)"
        }
    assert none.headers["access-control-allow-origin"] == UI  # the UI can read the refusal


async def test_codec_server_cors_preflight_for_the_ui_origin_only(codec_url: str) -> None:
    preflight = {"Access-Control-Request-Method": "POST"}
    async with httpx.AsyncClient(base_url=codec_url) as http:
        ui = await http.options("/decode", headers={"Origin": UI, **preflight})
        other = await http.options("/decode", headers={"Origin": "http://evil.test", **preflight})
        post = await http.post("/decode", json=body(), headers={"Origin": UI, **auth()})
        stranger = await http.post(
            "/decode", json=body(), headers={"Origin": "http://evil.test", **auth()}
        )
    assert ui.status_code == 204
    assert ui.headers["access-control-allow-origin"] == UI
    assert ui.headers["access-control-allow-methods"] == "POST"
    assert ui.headers["access-control-allow-headers"] == ALLOW_HEADERS
    assert ui.headers["access-control-allow-credentials"] == "true"
    assert other.status_code == 403 and "access-control-allow-origin" not in other.headers
    assert post.status_code == 200 and post.headers["access-control-allow-origin"] == UI
    assert post.json() == {"payloads": []}
    assert "access-control-allow-origin" not in stranger.headers


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"not json", "not JSON"),
        (b'{"payloads": "x"}', "payloads: expected a list"),
        (b'{"payloads": [{"data": "%%%"}]}', "payloads[0].data: not base64"),
        (b'{"payloads": [{"metadata": {"encoding": 7}}]}', "payloads[0].metadata.encoding:"),
        (b'{"payloads": [{"data": "eA==", "x": 1}]}', 'payloads[0]: expected an object with "'),
        (b"[" * 100_000, "not JSON"),
        (b"\xff\xfe", "not JSON"),
    ],
)
async def test_codec_server_bad_body_is_400_in_one_line(
    codec_url: str, content: bytes, says: str
) -> None:
    async with httpx.AsyncClient(base_url=codec_url) as http:
        answer = await http.post("/decode", content=content, headers=auth())
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error.startswith(f'body is not {{"payloads": [...]}}: {says}') and "\n" not in error


async def test_codec_server_body_limit_and_undecryptable_payload(codec_url: str) -> None:
    (under_other,) = await EncryptionCodec(KeyRing((("C", KEY_A),))).encode([plain(SECRET)])
    async with httpx.AsyncClient(base_url=codec_url) as http:
        big = await http.post("/encode", content=b" " * (MAX_BODY + 1), headers=auth())
        unknown = await http.post("/decode", json=body(under_other), headers=auth())
    assert big.status_code == 413
    assert unknown.status_code == 400
    assert "key id 'C', which is not configured (keys: B, A)" in unknown.json()["error"]


async def test_demo_mode_lets_only_the_ui_origin_in_without_a_token() -> None:
    app = build_app(EncryptionCodec(A), token=None, allow_ui_without_token=True)
    async with served(app) as url, httpx.AsyncClient(base_url=url) as http:
        ui = await http.post("/decode", json=body(plain("x")), headers={"Origin": UI})
        script = await http.post("/decode", json=body(plain("x")))
    assert ui.status_code == 200 and script.status_code == 401
    with pytest.raises(CodecServerError, match="no token for the codec server"):
        build_app(EncryptionCodec(A), token=None)


def test_codec_server_token_from_env_or_file(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    assert load_token(CodecServerSettings(token=None, token_file=str(path))) == TOKEN
    assert load_token(CodecServerSettings(token=TOKEN, token_file=None)) == TOKEN  # type: ignore[arg-type]
    assert load_token(CodecServerSettings(token=None, token_file=None)) is None
    path.write_text("\n")
    with pytest.raises(CodecServerError, match="is empty"):
        load_token(CodecServerSettings(token=None, token_file=str(path)))


async def test_codec_server_cli_serves_with_the_configured_key_and_token(tmp_path: Path) -> None:
    port = free_port()
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    env = {
        **os.environ,
        ENV_KEYS: line("A", KEY_A),
        "RETAILFLOW_CODEC_SERVER_TOKEN_FILE": str(token_file),
    }
    cmd = [str(Path(sys.executable).parent / "retailflow"), "codec-server", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc, "the codec server")  # type: ignore[arg-type]
        (sealed,) = await EncryptionCodec(A).encode([plain(SECRET)])
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            answer = await http.post("/decode", json=body(sealed), headers=auth())
        assert answer.status_code == 200, answer.text
        assert json_format.ParseDict(answer.json(), Payloads()).payloads == [plain(SECRET)]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()
