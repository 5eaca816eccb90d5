"""The dev tools find the sqlharbor checkout explicitly: ``$SQLHARBOR_CHECKOUT``, else the
current directory or a parent; never from where their own files are installed."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlharbor_devtools.devenv import NoCheckoutError, Toolchain, find_repo_root
from sqlharbor_devtools.devenv.checkout import CHECKOUT_ENV, GO_MODULES

REPO = Path(__file__).resolve().parents[2]  # this test's own checkout


def test_the_checkout_is_found_from_any_folder_inside_it() -> None:
    assert find_repo_root({}, cwd=REPO / "tests" / "unit") == REPO
    assert (REPO / GO_MODULES / "etcd" / "go.mod").is_file()


def test_outside_a_checkout_there_is_none(tmp_path: Path) -> None:
    assert find_repo_root({}, cwd=tmp_path) is None


def test_the_environment_names_the_checkout(tmp_path: Path) -> None:
    assert find_repo_root({CHECKOUT_ENV: str(REPO)}, cwd=tmp_path) == REPO
    with pytest.raises(NoCheckoutError, match="is not a sqlharbor checkout"):
        find_repo_root({CHECKOUT_ENV: str(tmp_path)}, cwd=REPO)


def test_the_toolchain_takes_the_go_modules_from_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    toolchain = Toolchain.from_env({CHECKOUT_ENV: str(REPO), "PATH": ""})
    assert toolchain.modules_dir == REPO / GO_MODULES
    assert Toolchain.from_env({"PATH": ""}).modules_dir is None
