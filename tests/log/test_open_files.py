"""The budget of open log descriptors: least recently used closed first, reopened on use, nothing lost."""

from __future__ import annotations

import os

from kafkacompat.log import open_files
from kafkacompat.log.open_files import OpenFiles
from kafkacompat.log.segment import LogSegment
from tests.log.batch_builder import build_batch


def _open_descriptors(directory) -> int:
    """This process's descriptors open on files in ``directory``: other threads' sockets and files
    (a client left by an earlier test in the same worker) come and go without counting."""
    found = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        found += target.startswith(f"{directory}{os.sep}")
    return found


def test_segments_over_the_budget_close_and_reopen(tmp_path, monkeypatch) -> None:
    budget = OpenFiles(budget=4)
    monkeypatch.setattr("kafkacompat.log.segment.OPEN_FILES", budget)
    before = _open_descriptors(tmp_path)
    segments = [LogSegment(tmp_path, base) for base in range(0, 400, 10)]
    assert len(budget) == 4 and _open_descriptors(tmp_path) - before == 4
    batch = build_batch([b"x"])
    for segment in segments:  # every append reopens a released descriptor
        segment.append(batch, [], index_interval_bytes=1 << 20)
    assert len(budget) == 4 and _open_descriptors(tmp_path) - before == 4
    assert all(segment.pread(0, len(batch)) == bytes(batch) for segment in segments)
    fd = segments[0].take_unsynced_fd()  # released, still owed an fsync: a fresh descriptor carries it
    assert fd is not None
    os.fsync(fd)
    os.close(fd)
    for segment in segments:
        segment.close()
    assert len(budget) == 0 and _open_descriptors(tmp_path) == before


def test_a_dirty_index_whose_descriptor_was_taken_back_is_still_handed_over_for_its_fsync(tmp_path, monkeypatch) -> None:
    budget = OpenFiles(budget=1)
    monkeypatch.setattr("kafkacompat.log.index.OPEN_FILES", budget)
    first, second = LogSegment(tmp_path, 0), LogSegment(tmp_path, 100)
    first.offset_index.append(1, 10)
    second.offset_index.append(1, 20)  # takes the only slot: the first index is released, still dirty
    assert first.offset_index._fd is None
    fd = first.offset_index.detach()
    assert fd is not None
    os.close(fd)
    assert first.offset_index.detach() is None  # handed over once


def test_the_budget_grows_with_the_descriptor_limit() -> None:
    assert open_files.descriptor_budget(1024) == 576
    assert open_files.descriptor_budget(20_000) == 14_808
    assert open_files.descriptor_budget(100) == open_files.MIN_OPEN_FILES
