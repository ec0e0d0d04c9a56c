"""app.cli: the ``herald api`` command's development operator key."""

import os
from pathlib import Path

import pytest
import uvicorn
from typer.testing import CliRunner

from app.cli import cli


@pytest.fixture
def no_operator_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("HERALD_"):
            monkeypatch.delenv(name)
    # setenv first, so that monkeypatch restores the variable the command is about to set.
    monkeypatch.setenv("HERALD_OPERATOR_KEY", "placeholder")
    monkeypatch.delenv("HERALD_OPERATOR_KEY")
    monkeypatch.chdir(tmp_path)


def serve(monkeypatch: pytest.MonkeyPatch, *args: str) -> str | None:
    """Run ``herald api``; the operator key its uvicorn workers would find in the environment."""
    seen: list[str | None] = []
    monkeypatch.setattr(
        uvicorn, "run", lambda *_, **__: seen.append(os.environ.get("HERALD_OPERATOR_KEY"))
    )
    result = CliRunner().invoke(cli, ["api", *args])
    assert result.exit_code == 0, result.output
    [key] = seen
    return key


@pytest.mark.usefixtures("no_operator_key")
def test_workers_share_one_development_key_kept_across_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first = serve(monkeypatch, "--workers", "4")
    assert first is not None
    assert first.startswith("hrk_dev_")
    assert (tmp_path / ".herald" / "operator_key").read_text().strip() == first
    monkeypatch.delenv("HERALD_OPERATOR_KEY")
    assert serve(monkeypatch, "--workers", "4") == first


@pytest.mark.usefixtures("no_operator_key")
def test_a_configured_key_is_left_alone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HERALD_OPERATOR_KEY", "hrk_configured")
    assert serve(monkeypatch, "--workers", "2") == "hrk_configured"
    assert not (tmp_path / ".herald").exists()
