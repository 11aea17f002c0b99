"""Garbage in, DecodeError out: never another exception, never a hang."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_bodies import BodyMaker

from kafkacompat.protocol import DecodeError, decode_request, decode_response, encode_request, encode_response, load_specs

TARGETS = [(0, 3), (0, 9), (1, 4), (1, 12), (3, 1), (3, 12), (18, 3), (11, 6), (14, 5), (19, 7)]


@pytest.mark.parametrize(("api_key", "version"), TARGETS)
@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=200))
def test_random_bytes(api_key: int, version: int, data: bytes) -> None:
    for decode in (decode_request, decode_response):
        try:
            decode(api_key, version, data)
        except DecodeError:
            pass


@pytest.mark.parametrize(("api_key", "version"), TARGETS)
@settings(max_examples=60, deadline=None)
@given(position=st.integers(min_value=0), byte=st.integers(0, 255))
def test_corrupted_valid_messages(api_key: int, version: int, position: int, byte: int) -> None:
    spec = load_specs()[api_key]
    for fields, encode, decode in ((spec.request, encode_request, decode_request),
                                   (spec.response, encode_response, decode_response)):
        data = bytearray(encode(api_key, version, BodyMaker(version).body(fields)))
        data[position % len(data)] = byte
        try:
            decode(api_key, version, bytes(data))
        except DecodeError:
            pass
