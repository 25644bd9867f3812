"""Codecs: json, raw, binary, chaining, registration, no pickle by default."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest
from sabot.faust import codecs


def test_json_round_trip_matches_stdlib() -> None:
    obj = {"a": 1, "b": [1.5, "x", None, True], "c": {"d": "é"}}
    data = codecs.dumps("json", obj)
    assert isinstance(data, bytes)
    assert json.loads(data.decode("utf-8")) == obj
    assert codecs.loads("json", data) == obj


def test_json_writes_faust_extended_types() -> None:
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    when = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    data = codecs.loads("json", codecs.dumps("json", {"u": u, "t": when, "d": Decimal("1.10")}))
    assert data == {"u": str(u), "t": "2024-05-06T07:08:09+00:00", "d": "1.10"}


def test_raw_and_binary() -> None:
    assert codecs.dumps("raw", "héllo") == "héllo".encode()
    assert codecs.loads("raw", b"\x00\x01") == b"\x00\x01"
    assert codecs.dumps("binary", b"\x00\xff") == base64.b64encode(b"\x00\xff")
    assert codecs.loads("binary", base64.b64encode(b"\x00\xff")) == b"\x00\xff"


def test_no_codec_passes_through() -> None:
    assert codecs.dumps(None, {"a": 1}) == {"a": 1}
    assert codecs.loads(None, b"x") == b"x"


def test_chained_codecs() -> None:
    data = codecs.dumps("json|binary", {"a": 1})
    assert base64.b64decode(data) == b'{"a": 1}'
    assert codecs.loads("json|binary", data) == {"a": 1}
    both = codecs.get_codec("json") | codecs.get_codec("binary")
    assert both.dumps({"a": 1}) == data


def test_register_custom_codec() -> None:
    class Reverse(codecs.Codec):
        def _dumps(self, obj):
            return codecs.want_bytes(obj)[::-1]

        def _loads(self, s):
            return s[::-1]

    codecs.register("test-reverse", Reverse())
    try:
        assert codecs.dumps("test-reverse", b"abc") == b"cba"
        assert (
            codecs.loads("test-reverse|binary", codecs.dumps("test-reverse|binary", b"ab")) == b"ab"
        )
    finally:
        del codecs.codecs["test-reverse"]


def test_pickle_is_not_registered_by_default() -> None:
    with pytest.raises(codecs.UnknownCodecError, match="pickle.*not registered by default"):
        codecs.dumps("pickle", {"a": 1})
    with pytest.raises(LookupError):
        codecs.loads("pickle", b"\x80\x04N.")


def test_pickle_opt_in() -> None:
    codecs.register("pickle", codecs.PickleCodec())
    try:
        assert codecs.loads("pickle", codecs.dumps("pickle", {1, 2})) == {1, 2}
    finally:
        del codecs.codecs["pickle"]


def test_unknown_codec_names_known_ones() -> None:
    with pytest.raises(codecs.UnknownCodecError, match=r"'nope'.*registered: binary, json, raw"):
        codecs.get_codec("nope")


def test_decode_errors_name_codec_and_payload() -> None:
    with pytest.raises(
        codecs.CodecError, match=r"codec 'json': cannot decode 8 bytes starting b'not json'"
    ):
        codecs.loads("json", b"not json")
    with pytest.raises(codecs.CodecError, match=r"codec 'binary'.*not base64"):
        codecs.loads("binary", b"%%%")
    with pytest.raises(codecs.CodecError, match=r"codec 'json': cannot encode a object"):
        codecs.dumps("json", object())
    with pytest.raises(codecs.CodecError, match=r"codec 'raw': cannot encode a int"):
        codecs.dumps("raw", 5)
