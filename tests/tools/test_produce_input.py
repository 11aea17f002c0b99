"""How ``kafkacompat produce`` cuts stdin into records."""

from __future__ import annotations

import os
import threading

import pytest

from kafkacompat.client import ClientError
from kafkacompat.tools.produce import parse_line, read_lines


def test_lines_split_across_reads_come_out_whole_and_crlf_is_stripped():
    read_fd, write_fd = os.pipe()

    def write() -> None:
        for chunk in (b"one\r\ntw", b"o\n", b"three\nfour"):
            os.write(write_fd, chunk)
        os.close(write_fd)

    writer = threading.Thread(target=write)
    writer.start()
    lines = [line for chunk in read_lines(read_fd) for line in chunk]
    writer.join()
    os.close(read_fd)
    assert lines == [b"one", b"two", b"three", b"four"]


def test_key_separator_splits_at_the_first_occurrence():
    headers = [("h", b"1")]
    assert parse_line(b"k:v:w", 1, b":", headers) == (b"k", b"v:w", headers)
    assert parse_line(b"k:v", 1, None, []) == (None, b"k:v", [])
    assert parse_line(b":v", 1, b":", []) == (b"", b"v", [])


def test_a_line_without_the_separator_is_an_error_naming_the_line():
    with pytest.raises(ClientError, match=r"no key separator '\\t' on line 3"):
        parse_line(b"novalue", 3, b"\t", [])
