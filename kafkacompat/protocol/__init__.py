"""Kafka's wire protocol, sans I/O: frames in, typed bodies out, and back.

Nothing in this package touches sockets or Trio; every function works on byte
strings, so it is tested with byte strings alone.
"""

from kafkacompat.protocol.frames import (
    RequestHeader,
    encode_request_frame,
    encode_response_frame,
    parse_request,
    parse_response_frame,
    request_header_version,
    response_frame_parts,
    response_header_version,
)
from kafkacompat.protocol.primitives import OutOfBand, Part, join_parts, part_size
from kafkacompat.protocol.schema import (
    DecodeError,
    EncodeError,
    decode_data,
    decode_request,
    decode_response,
    encode_data,
    encode_request,
    encode_response,
    encode_response_parts,
)
from kafkacompat.protocol.specs import ApiSpec, FieldSpec, load_data_specs, load_specs

__all__ = [
    "ApiSpec",
    "DecodeError",
    "EncodeError",
    "FieldSpec",
    "OutOfBand",
    "Part",
    "RequestHeader",
    "decode_data",
    "decode_request",
    "decode_response",
    "encode_data",
    "encode_request",
    "encode_request_frame",
    "encode_response",
    "encode_response_frame",
    "encode_response_parts",
    "join_parts",
    "load_data_specs",
    "load_specs",
    "parse_request",
    "part_size",
    "parse_response_frame",
    "request_header_version",
    "response_frame_parts",
    "response_header_version",
]
