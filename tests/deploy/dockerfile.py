"""A small reader of Dockerfile and .dockerignore, enough for the checks in test_docker.py."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Instruction", "ignored", "instructions", "stages"]


@dataclass(frozen=True)
class Instruction:
    """One instruction: its keyword (upper case) and its arguments as written."""

    keyword: str
    args: str

    def exec_form(self) -> list[str]:
        """The arguments in JSON (exec) form, after any --flag=value options."""
        text = self.args
        while text.startswith("--"):
            text = text.split(None, 1)[1]
        if text.startswith("CMD "):  # HEALTHCHECK [options] CMD [...]
            text = text[4:]
        form: list[str] = json.loads(text)
        return form


def instructions(path: Path) -> list[Instruction]:
    """Every instruction of a Dockerfile, continuation lines joined, comments dropped."""
    found: list[Instruction] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        found.append(Instruction(keyword.upper(), " ".join(args.split())))
        pending = ""
    return found


def stages(path: Path) -> list[list[Instruction]]:
    """The instructions of each build stage, FROM first."""
    out: list[list[Instruction]] = []
    for ins in instructions(path):
        if ins.keyword == "FROM":
            out.append([])
        if out:
            out[-1].append(ins)
    return out


def ignored(patterns: list[str], path: str) -> bool:
    """Whether Docker leaves `path` out of the build context: the last matching rule wins."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    verdict = False
    for pattern in patterns:
        exclude = not pattern.startswith("!")
        rule = pattern.lstrip("!").rstrip("/")
        if any(_match(rule, prefix) for prefix in prefixes):
            verdict = exclude
    return verdict


def _match(rule: str, path: str) -> bool:
    if rule.startswith("**/"):
        tail = rule[3:]
        return any(fnmatch.fnmatchcase(part, tail) for part in path.split("/"))
    return fnmatch.fnmatchcase(path, rule)
