"""store.workspace: the folder a line's files live in, beside its database."""

from __future__ import annotations

from pathlib import Path

import pytest

from trayline.store.workspace import workspace_of


def test_sqlite_file_is_its_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert workspace_of(f"sqlite:///{tmp_path}/line/t.db") == tmp_path / "line"
    monkeypatch.chdir(tmp_path)
    assert workspace_of("sqlite:///rel/t.db") == tmp_path / "rel", "relative paths resolve"


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "postgresql+psycopg://u@127.0.0.1/line"]
)
def test_no_file_means_the_working_directory(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert workspace_of(url) == tmp_path.resolve()
