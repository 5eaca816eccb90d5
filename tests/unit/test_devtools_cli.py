"""``sqlharbor-dev`` carries every dev verb the product CLI and the agent gave up."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from sqlharbor_devtools.cli import main


def test_sqlharbor_dev_has_the_dev_demo_and_simulator_verbs() -> None:
    main._register()
    assert set(main.cli.commands) == {
        "up",
        "down",
        "env",
        "status",
        "build",
        "apply-crds",
        "demo",
        "simulate",
        "simulate-compare",
        "image",
        "bundle",
    }


def test_outside_a_checkout_the_demo_says_so_and_starts_nothing(tmp_path: Path) -> None:
    main._register()
    result = CliRunner().invoke(
        main.cli,
        ["demo", "--once", "--state-dir", str(tmp_path / "state")],
        env={"SQLHARBOR_CHECKOUT": str(tmp_path)},
    )
    assert result.exit_code == 1
    assert "DevEnvNoCheckout" in result.output
    assert not (tmp_path / "state").exists()


def test_outside_a_checkout_the_image_build_says_so_and_builds_nothing(tmp_path: Path) -> None:
    main._register()
    result = CliRunner().invoke(
        main.cli,
        ["image", "build", "--out", str(tmp_path / "dist")],
        env={"SQLHARBOR_CHECKOUT": str(tmp_path)},
    )
    assert result.exit_code == 1
    assert "DevEnvNoCheckout" in result.output
    assert not (tmp_path / "dist").exists()
