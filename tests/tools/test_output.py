"""Tool output on a pipe: whole rows, text as written, JSON untouched."""

from __future__ import annotations

import json

from kafkacompat.tools import output


def test_a_table_on_a_pipe_keeps_long_rows_whole_and_cells_literal(capsys):
    long_name = "t" * 300
    output.table(None, ["TOPIC", "VALUE"], [[long_name, "[red]x"], [":smile:", None]])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["TOPIC", "VALUE"]
    assert [line.split() for line in lines[2:]] == [[long_name, "[red]x"], [":smile:", "-"]]


def test_report_prints_json_or_text_and_nothing_for_empty_text(capsys):
    output.report(True, {"records": 3}, "ignored")
    assert json.loads(capsys.readouterr().out) == {"records": 3}
    output.report(False, {"records": 3}, "Created topic [x].")
    assert capsys.readouterr().out == "Created topic [x].\n"
    output.report(False, [], "")
    assert capsys.readouterr().out == ""
