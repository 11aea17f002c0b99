"""The odd-request generator: what it builds must decode, and must be odd in the ways it promises."""

from __future__ import annotations

import random

import pytest

from kafkacompat.fuzz.generator import LARGE_ARRAY, OddRequests, mutate, with_unknown_tagged_fields
from kafkacompat.handlers.dispatch import REGISTRY
from kafkacompat.protocol import decode_request, encode_request, load_specs, parse_request

SPECS = load_specs()
PAIRS = [(key, version) for key, handler in sorted(REGISTRY.items())
         for version in range(handler.min_version, handler.max_version + 1)]


@pytest.mark.parametrize(("api_key", "version"), PAIRS)
def test_generated_frames_decode_as_the_broker_decodes_them(api_key, version):
    odd = OddRequests(SPECS, random.Random(api_key * 100 + version))
    for correlation_id in range(40):
        frame, _ = odd.frame(api_key, version, correlation_id)
        header, body = parse_request(memoryview(frame)[4:])
        assert (header.api_key, header.api_version, header.correlation_id) == (api_key, version, correlation_id)
        decode_request(api_key, version, body)


def test_nulls_empty_and_large_arrays_all_occur():
    odd = OddRequests(SPECS, random.Random(1))
    topics = [odd.body(3, 12)["topics"] for _ in range(400)]
    assert None in topics
    assert [] in topics
    assert any(t is not None and len(t) == LARGE_ARRAY for t in topics)
    names = {topic["name"] for t in topics if t for topic in t}
    assert None in names and "" in names


def test_unknown_tagged_fields_are_skipped_by_the_decoder():
    body = encode_request(3, 12, {"topics": None})
    tagged = with_unknown_tagged_fields(body, random.Random(3))
    assert tagged != body
    assert decode_request(3, 12, tagged).topics is None


def test_mutation_keeps_the_size_prefix_honest():
    frame, _ = OddRequests(SPECS, random.Random(2)).frame(0, 9, 1)
    rng = random.Random(5)
    for _ in range(100):
        mutated = mutate(frame, rng)
        assert int.from_bytes(mutated[:4], "big", signed=True) == len(mutated) - 4
