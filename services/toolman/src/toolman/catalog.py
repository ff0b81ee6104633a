"""The aggregated, per-agent view of every ready server's tools, prompts and resources.

Rebuilt (cheaply) whenever a server comes or goes, its lists change, or the
config is reloaded; each agent's View is computed once per rebuild and cached,
so listing and calling are dictionary lookups. Names are assigned over every
server's last known tools, ready or not, so a server going down never renames
another server's tools.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from toolman import naming
from toolman.policy import PolicyRules
from toolman.supervisor import Supervisor

KINDS = ("tools", "prompts", "resources")


@dataclass(frozen=True)
class Entry:
    exposed: str
    server: str
    name: str  # the server's own name for it


@dataclass
class View:
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_index: dict[str, Entry] = field(default_factory=dict)
    prompts: list[dict[str, Any]] = field(default_factory=list)
    prompt_index: dict[str, Entry] = field(default_factory=dict)
    resources: list[dict[str, Any]] = field(default_factory=list)
    resource_index: dict[str, str] = field(default_factory=dict)  # uri -> server
    templates: list[dict[str, Any]] = field(default_factory=list)
    template_patterns: list[tuple[re.Pattern[str], str]] = field(default_factory=list)
    template_index: dict[str, str] = field(default_factory=dict)  # uriTemplate -> server
    fingerprints: dict[str, int] = field(default_factory=dict)

    def server_for_uri(self, uri: str) -> str | None:
        server = self.resource_index.get(uri)
        if server is not None:
            return server
        for pattern, candidate in self.template_patterns:
            if pattern.fullmatch(uri):
                return candidate
        return None

    def server_for_template(self, uri_template: str) -> str | None:
        return self.template_index.get(uri_template)


def template_pattern(template: str) -> re.Pattern[str]:
    """A regex for an RFC 6570 URI template: simple ``{x}`` is one segment, operators match more."""
    out = []
    for part in re.split(r"(\{[^}]*\})", template):
        if part.startswith("{") and part.endswith("}"):
            expression = part[1:-1]
            simple = expression[:1].isalnum() or expression[:1] == "_"
            out.append("[^/?#]+" if simple else ".*")
        else:
            out.append(re.escape(part))
    return re.compile("".join(out))


def _names(items: Iterable[dict[str, Any]], key: str = "name") -> Iterable[str]:
    for item in items:
        value = item.get(key)
        if isinstance(value, str) and value:
            yield value


class Catalog:
    def __init__(self) -> None:
        self._supervisors: Sequence[Supervisor] = ()
        self._rules = PolicyRules()
        self._tool_names: dict[naming.Original, str] = {}
        self._tool_originals: dict[str, naming.Original] = {}  # exposed -> (server, tool)
        self._prompt_names: dict[naming.Original, str] = {}
        self._views: dict[str, View] = {}
        self.clashes: tuple[str, ...] = ()  # config errors: unprefixed names claimed twice

    def rebuild(
        self, supervisors: Sequence[Supervisor], rules: PolicyRules, separator: str
    ) -> None:
        self._supervisors = tuple(supervisors)
        self._rules = rules
        unprefixed = frozenset(s.name for s in supervisors if not s.config.prefix)
        tools = naming.assign_names(
            ((s.name, tool) for s in supervisors for tool in _names(s.last_tools)),
            separator,
            unprefixed,
        )
        prompts = naming.assign_names(
            ((s.name, p) for s in supervisors if s.catalog for p in _names(s.catalog.prompts)),
            separator,
            unprefixed,
        )
        self._tool_names, self._prompt_names = tools.exposed, prompts.exposed
        self._tool_originals = {exposed: original for original, exposed in self._tool_names.items()}
        self.clashes = tuple(
            [clash.describe("tool") for clash in tools.clashes]
            + [clash.describe("prompt") for clash in prompts.clashes]
        )
        self._views = {}

    def tool_original(self, exposed: str) -> naming.Original | None:
        """The (server, tool) behind an exposed tool name, ready or not, as currently assigned."""
        return self._tool_originals.get(exposed)

    def view(self, agent: str) -> View:
        view = self._views.get(agent)
        if view is None:
            view = self._views[agent] = self._build(agent)
        return view

    def _build(self, agent: str) -> View:
        rules, view = self._rules, View()
        for supervisor in self._supervisors:
            catalog, server = supervisor.catalog, supervisor.name
            if catalog is None or not rules.server_allowed(agent, server):
                continue
            for tool in catalog.tools:
                name = tool.get("name")
                if not isinstance(name, str):
                    continue
                exposed = self._tool_names.get((server, name))
                if exposed is None or not rules.decide(agent, server, name, exposed).allowed:
                    continue
                view.tools.append({**tool, "name": exposed})
                view.tool_index[exposed] = Entry(exposed, server, name)
            for prompt in catalog.prompts:
                name = prompt.get("name")
                if not isinstance(name, str):
                    continue
                exposed = self._prompt_names.get((server, name))
                if exposed is not None:
                    view.prompts.append({**prompt, "name": exposed})
                    view.prompt_index[exposed] = Entry(exposed, server, name)
            for resource in catalog.resources:
                uri = resource.get("uri")
                if isinstance(uri, str) and uri not in view.resource_index:
                    view.resources.append(resource)
                    view.resource_index[uri] = server
            for template in catalog.templates:
                uri_template = template.get("uriTemplate")
                if isinstance(uri_template, str):
                    view.templates.append(template)
                    view.template_patterns.append((template_pattern(uri_template), server))
                    view.template_index.setdefault(uri_template, server)
        view.fingerprints = {
            "tools": hash(tuple(view.tool_index)),
            "prompts": hash(tuple(view.prompt_index)),
            "resources": hash(
                (tuple(view.resource_index), tuple(_names(view.templates, "uriTemplate")))
            ),
        }
        return view
