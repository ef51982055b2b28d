"""AI-crawler robots.txt groups, read as a statement of intent; and ai.txt (Spawning's site-level file).

A site whose robots.txt disallows a path for well-known AI-training crawlers (``data/ai_crawlers.txt``,
with its source) has told AI crawlers "no" for that path, though it cannot know our token: that is an
opt-out for the path (reason ``robots-txt-ai-crawlers``), whatever our own group says.

ai.txt (``/ai.txt``) uses robots.txt syntax with file-type rules (``Disallow: *.jpg``); the group for
our token applies, else ``*`` (reason ``ai-txt``). Its failure rules are robots.txt's (RFC 9309): 2xx
parsed; 4xx none (allowed); 5xx, 429 or unreachable disallow everything. Pure functions, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from .records import Signal
from .robotsgroups import Group, Rule, availability, decide, groups_for, parse_groups, rules_for

AI_TXT_PATH = "/ai.txt"


@lru_cache(maxsize=1)
def ai_crawlers() -> tuple[str, ...]:
    """The AI crawlers' product tokens (``consentry/core/data/ai_crawlers.txt``)."""
    text = (resources.files("consentry.core") / "data" / "ai_crawlers.txt").read_text(encoding="utf-8")
    return tuple(t for t in (ln.split("#", 1)[0].strip() for ln in text.splitlines()) if t)


def ai_group_rules(groups: list[Group], agents: tuple[str, ...] | None = None) -> dict[str, list[Rule]]:
    """The rules of the groups that name an AI crawler explicitly, by crawler (``*`` groups are not statements)."""
    out: dict[str, list[Rule]] = {}
    for agent in ai_crawlers() if agents is None else agents:
        named = groups_for(groups, agent)
        if named:
            out[agent] = [r for g in named for r in g.rules]
    return out


def ai_group_signal(ai_rules: dict[str, list[Rule]], url: str, scope: str = "page") -> Signal | None:
    """An opt-out when some AI crawler's group disallows ``url``; "allowed" when such groups exist and allow it."""
    if not ai_rules:
        return None
    for agent, rules in ai_rules.items():
        allowed, rule = decide(rules, url)
        if not allowed:
            return Signal(name="robots.txt-ai-crawlers", value=f"{agent}: {rule}", opt_out=True, scope=scope,  # type: ignore[arg-type]
                          detail=f"robots.txt group for {agent} (an AI crawler) disallows this path")
    return Signal(name="robots.txt-ai-crawlers", value=f"allowed ({len(ai_rules)} AI crawler group(s))",
                  opt_out=False, scope=scope)  # type: ignore[arg-type]


@dataclass(frozen=True)
class AiTxt:
    """What one site's ai.txt says to us."""

    mode: str  # parsed | allow-all | disallow-all
    why: str
    rules: tuple[Rule, ...] = ()

    def signal(self, url: str, scope: str = "page") -> Signal | None:
        """The ai.txt signal for ``url`` (None when the site has no ai.txt, or no group applies to us)."""
        if self.mode == "allow-all":
            return None
        if self.mode == "disallow-all":
            return Signal(name="ai.txt", value=f"disallowed ({self.why})", opt_out=True, scope=scope)  # type: ignore[arg-type]
        allowed, rule = decide(list(self.rules), url)
        value = "allowed" if allowed else f"disallowed ({rule})"
        return Signal(name="ai.txt", value=value, opt_out=not allowed, scope=scope)  # type: ignore[arg-type]


def ai_txt(status: int | None, body: bytes, error: str | None, tokens: list[str]) -> AiTxt:
    """ai.txt as fetched (``status`` None: unreachable), read for the first of ``tokens`` named, else ``*``."""
    mode = availability(status)
    if mode == "disallow-all":
        return AiTxt(mode, f"ai.txt unreachable: {error}" if status is None else f"ai.txt answered {status}")
    if mode == "allow-all":
        return AiTxt(mode, f"ai.txt answered {status} (none)")
    rules = rules_for(parse_groups(body), tokens)
    if rules is None:
        return AiTxt("allow-all", "ai.txt has no group for us or *")
    return AiTxt("parsed", "ai.txt rules", tuple(rules))
