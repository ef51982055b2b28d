"""Robots-style group files (robots.txt, ai.txt) read group by group, and RFC 9309 rule matching.

Protego answers "may *this* agent fetch this URL" and falls back to the ``*`` group; two of our
signals need more: which groups name a given agent *explicitly* (a robots.txt group for GPTBot),
and ai.txt's file-type rules (``Disallow: *.jpg``). Pure functions, no I/O.

Matching follows RFC 9309 section 2.2.2: ``*`` matches any characters, a trailing ``$`` anchors
the end, the longest matching pattern wins and ``Allow`` wins a tie. A pattern that does not start
with ``/`` or ``*`` (``.jpg``, ``images/``) is read as if it started with ``*`` — broader, never
narrower, than what its author may have meant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import unquote, urlsplit


def availability(status: int | None) -> str:
    """RFC 9309 section 2.3.1 for a fetched robots-style file: ``parsed``, ``allow-all`` or ``disallow-all``.

    2xx: the rules apply; 4xx except 429 (and redirects past the limit): unavailable, everything is
    allowed; 5xx, 429, or unreachable (``status`` None): nothing is allowed.
    """
    if status is None or status == 429 or status >= 500:
        return "disallow-all"
    return "parsed" if 200 <= status < 300 else "allow-all"


@dataclass(frozen=True)
class Rule:
    allow: bool
    pattern: str

    def __str__(self) -> str:
        return f"{'Allow' if self.allow else 'Disallow'}: {self.pattern}"


@dataclass
class Group:
    agents: list[str]  # as written (lower-cased)
    rules: list[Rule] = field(default_factory=list)


def parse_groups(text: str | bytes) -> list[Group]:
    """The groups of a robots-style file: consecutive ``User-agent`` lines, then their rules."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    groups: list[Group] = []
    current: Group | None = None
    in_agents = False
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if ":" not in line:
            continue
        key, _, value = line.partition(":")
        key, value = key.strip().lower().replace("_", "-"), value.strip()
        if key == "user-agent":
            if current is None or not in_agents:
                current = Group(agents=[])
                groups.append(current)
            current.agents.append(value.lower())
            in_agents = True
        elif key in ("allow", "disallow") and current is not None:
            in_agents = False
            if value:  # an empty Disallow allows everything: no rule
                current.rules.append(Rule(key == "allow", value))
        else:
            in_agents = False
    return groups


def agent_matches(written: str, agent: str) -> bool:
    """Does a group's ``User-agent`` value name ``agent`` (RFC 9309: case-insensitive product token)?"""
    written = written.split("/", 1)[0].strip().lower()
    return written != "*" and written == agent.lower()


def groups_for(groups: list[Group], agent: str) -> list[Group]:
    """Groups naming ``agent`` explicitly (``*`` does not count)."""
    return [g for g in groups if any(agent_matches(a, agent) for a in g.agents)]


def rules_for(groups: list[Group], agents: list[str]) -> list[Rule] | None:
    """The rules that apply to the first of ``agents`` some group names, else the ``*`` groups' (None: no group)."""
    for agent in agents:
        named = groups_for(groups, agent)
        if named:
            return [r for g in named for r in g.rules]
    star = [g for g in groups if "*" in g.agents]
    return [r for g in star for r in g.rules] if star else None


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern[str]:
    if not pattern.startswith(("/", "*")):
        pattern = "*" + pattern
    anchored = pattern.endswith("$")
    body = pattern[:-1] if anchored else pattern
    return re.compile("".join(".*" if c == "*" else re.escape(c) for c in body) + ("$" if anchored else ""))


def path_of(url: str) -> str:
    p = urlsplit(url)
    return unquote(p.path or "/") + (f"?{p.query}" if p.query else "")


def decide(rules: list[Rule], url: str) -> tuple[bool, Rule | None]:
    """(allowed, the deciding rule) for ``url`` under ``rules`` (no matching rule: allowed)."""
    path = path_of(url)
    best: Rule | None = None
    for rule in rules:
        if _regex(rule.pattern).match(path):
            length = len(rule.pattern)
            if best is None or length > len(best.pattern) or (length == len(best.pattern) and rule.allow):
                best = rule
    return (True if best is None else best.allow), best
