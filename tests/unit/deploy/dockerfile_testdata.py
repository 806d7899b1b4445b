"""The Dockerfile, parsed: global ARG defaults and its stages (continuation lines joined, comments
dropped), for the tests of the deployment files and of the image's agreement with it."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def of(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def shell(self) -> list[list[str]]:
        """The RUN commands, each split into its `&&`-joined simple commands (as word lists)."""
        commands = []
        for run in self.of("RUN"):
            for part in run.split("&&"):
                words = shlex.split(part)
                if words:
                    commands.append(words)
        return commands


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with continuation lines joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        args = args.strip()
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            base = words[0]
            for name, value in global_args.items():
                base = base.replace(f"${{{name}}}", value).replace(f"${name}", value)
            stages.append(Stage(base=base, name=words[2] if len(words) == 3 else None))
        elif not stages:
            assert keyword == "ARG", f"only ARG may precede the first FROM, not {keyword}"
            name, _, default = args.partition("=")
            global_args[name] = default
        else:
            stages[-1].instructions.append((keyword, args))
    return global_args, stages
