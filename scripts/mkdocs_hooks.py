"""mkdocs hook: links from docs/ to repository files outside it, such as ../scenarios/x.yaml.

They work where the Markdown is read in the repository, but the site is built from docs/ alone,
so there each one becomes the file's repository path in code. A link whose file does not exist
is left as it is, for `mkdocs build --strict` to report as broken.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

_OUTSIDE_LINK = re.compile(r"\[[^\]\n]+\]\((\.\./[^)\s#]+)\)")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any, **_: Any) -> str:
    """The page's Markdown with links to existing files outside docs/ turned into paths."""
    docs = Path(os.path.abspath(config["docs_dir"]))
    repo = Path(os.path.abspath(config["config_file_path"])).parent
    here = (docs / page.file.src_path).parent

    def replace(link: re.Match[str]) -> str:
        # abspath, not resolve: a symlinked file stays where the repository puts it
        target = Path(os.path.abspath(here / link[1]))
        if docs in target.parents or repo not in target.parents or not target.is_file():
            return link[0]
        return f"`{target.relative_to(repo).as_posix()}`"

    return _OUTSIDE_LINK.sub(replace, markdown)
