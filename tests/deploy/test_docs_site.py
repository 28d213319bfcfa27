"""The documentation site: `mkdocs build --strict` passes, and fails on a broken link, a broken
anchor or a page left out of nav."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .tools import REPO


def _build(root: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=root,
        capture_output=True,
        text=True,
        # Material prints an end-of-life notice about MkDocs on every build unless told not to
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=60,
        check=False,
    )


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of docs/ and mkdocs.yml beside links to the rest of the repository."""
    root = tmp_path / "repo"
    root.mkdir()
    for entry in REPO.iterdir():
        if entry.name in {"docs", "mkdocs.yml", "site", ".git", ".venv"}:
            continue
        (root / entry.name).symlink_to(entry)
    shutil.copytree(REPO / "docs", root / "docs")
    shutil.copy(REPO / "mkdocs.yml", root / "mkdocs.yml")
    return root


def _append(page: Path, text: str) -> None:
    with page.open("a", encoding="utf-8") as file:
        file.write(f"\n{text}\n")


def test_docs_build_strictly(tmp_path: Path) -> None:
    """The site builds with --strict: every page in nav, every link and anchor resolves."""
    result = _build(REPO, tmp_path / "site")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "deploy" / "index.html").is_file()


def test_copy_of_the_docs_builds(checkout: Path) -> None:
    """The copied tree the failure checks below start from builds cleanly."""
    assert _build(checkout, checkout / "site").returncode == 0


def test_a_broken_link_fails_the_build(checkout: Path) -> None:
    """A link to a page that does not exist fails the build."""
    _append(checkout / "docs" / "index.md", "[gone](no-such-page.md)")
    result = _build(checkout, checkout / "site")
    assert result.returncode != 0 and "no-such-page.md" in result.stderr


def test_a_broken_anchor_fails_the_build(checkout: Path) -> None:
    """A link to a section that a page does not have fails the build."""
    _append(checkout / "docs" / "index.md", "[gone](failover.md#no-such-section)")
    result = _build(checkout, checkout / "site")
    assert result.returncode != 0 and "no-such-section" in result.stderr


def test_a_page_missing_from_nav_fails_the_build(checkout: Path) -> None:
    """A page in docs/ that nav does not list fails the build."""
    (checkout / "docs" / "orphan.md").write_text("# Orphan\n", encoding="utf-8")
    result = _build(checkout, checkout / "site")
    assert result.returncode != 0 and "orphan.md" in result.stderr


def test_a_link_to_a_missing_repository_file_fails_the_build(checkout: Path) -> None:
    """A link out of docs/ to a repository file that does not exist fails the build."""
    _append(checkout / "docs" / "simulate.md", "[gone](../scenarios/no-such-scenario.yaml)")
    result = _build(checkout, checkout / "site")
    assert result.returncode != 0 and "no-such-scenario.yaml" in result.stderr


def test_links_to_repository_files_become_their_paths(tmp_path: Path) -> None:
    """On the site a link from docs/ to a repository file shows that file's path."""
    site = tmp_path / "site"
    assert _build(REPO, site).returncode == 0
    page = (site / "simulate" / "index.html").read_text(encoding="utf-8")
    assert "<code>scenarios/primary-down.yaml</code>" in page
    assert "../scenarios/primary-down.yaml" not in page
