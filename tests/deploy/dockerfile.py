"""Reads deploy/Dockerfile into its stages and instructions, for the deploy tests.

Only what those tests need: line continuations, comments, `FROM image AS name`, and an
instruction's arguments either as the JSON (exec) form or as one shell string.

    stages = parse(open("deploy/Dockerfile").read())
    runtime = stage(stages, "runtime")
    runtime.base                      # "debian:bookworm-slim"
    [i.args for i in runtime.instructions if i.keyword == "RUN"]
"""

import dataclasses
import json
import re
import shlex


@dataclasses.dataclass
class Instruction:
    keyword: str  # upper case: RUN, COPY, EXPOSE, ...
    args: str     # the rest of the (joined) line, stripped
    line: int     # 1-based line where it starts

    def exec_form(self):
        """The arguments as a list: the JSON array form, or the shell words."""
        if self.args.startswith("["):
            return json.loads(self.args)
        return shlex.split(self.args)


@dataclasses.dataclass
class Stage:
    base: str
    name: str
    instructions: list


def _logical_lines(text):
    """(line number, text) per instruction: continuations joined, comments dropped."""
    pending, start = [], 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        yield start, " ".join(part for part in pending if part)
        pending = []
    if pending:
        raise ValueError(f"line {start}: the file ends inside a continued instruction")


def parse(text):
    """The stages of a Dockerfile, in order."""
    stages = []
    for number, line in _logical_lines(text):
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            match = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", args,
                                 re.IGNORECASE)
            if not match:
                raise ValueError(f"line {number}: cannot read FROM {args!r}")
            stages.append(Stage(base=match.group(1), name=match.group(2) or "",
                                instructions=[]))
            continue
        if not stages:
            raise ValueError(f"line {number}: {keyword} before the first FROM")
        stages[-1].instructions.append(Instruction(keyword, args, number))
    return stages


def stage(stages, name):
    """The stage called `name`; ValueError when there is none."""
    for candidate in stages:
        if candidate.name == name:
            return candidate
    raise ValueError(f"no stage named {name!r} (stages: {[s.name for s in stages]})")


def exposed_ports(stage_):
    """The TCP ports of a stage's EXPOSE instructions, as ints."""
    ports = []
    for instruction in stage_.instructions:
        if instruction.keyword == "EXPOSE":
            for word in instruction.args.split():
                port, _, protocol = word.partition("/")
                if protocol in ("", "tcp"):
                    ports.append(int(port))
    return ports
