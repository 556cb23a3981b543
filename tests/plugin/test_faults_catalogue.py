"""The fault catalogue command runs and its table tells the truth (its quickest section: 14
tampered, foreign or impossible checkpoints, each through a real ``beet`` process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import fault_catalogue as catalogue


def test_checkpoint_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = tmp_path / "table.md"
    status = catalogue.main(
        ["--tiny", "--only", "checkpoints", "--dir", str(tmp_path / "scratch"),
         "--markdown", str(table)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0, out
    rows = [line for line in table.read_text().splitlines() if line.startswith("| ok |")]
    assert len(rows) == 14
    assert all(row.endswith("| 0 |") for row in rows)  # no item lost
    assert "pickle payload" in out and "no code ran" in out and "CODE RAN" not in out
    assert "14 faults, 0 failed, 0 items lost" in out
    assert not (tmp_path / "scratch" / "checkpoints" / "CODE-FROM-CHECKPOINT-RAN").exists()


def test_table_marks_failed_rows_and_escapes_cells() -> None:
    table = catalogue.render(
        [
            catalogue.Row("g", "ok", "e", "a|b", 0, True),
            catalogue.Row("g", "bad", "e", "o", 1, False),
        ]
    )
    lines = table.splitlines()
    assert lines[2].startswith("| ok | g: ok |") and "a\\|b" in lines[2]
    assert lines[3].startswith("| **FAILED** | g: bad |") and lines[3].endswith("| 1 |")
