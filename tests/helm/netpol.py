"""A small NetworkPolicy evaluator: does a rendered set of policies let a connection through?

It follows the networking.k8s.io/v1 semantics the tests rely on: a pod selected by no policy of a
direction is open in that direction; a selected pod accepts only what some rule allows; a
connection needs the source's egress and the destination's ingress. Peers: podSelector and
namespaceSelector (matchLabels, matchExpressions; a podSelector alone means the policy's
namespace), ipBlock with except (matched against the other end's IP, pod or not). Ports: numbers,
named ports resolved on the destination pod, endPort, protocol.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Endpoint:
    """A pod (namespace set) or an address outside the cluster (namespace None)."""

    ip: str
    namespace: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)  # named container ports

    @property
    def ns_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace} if self.namespace else {}


def matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    if selector is None:
        return True
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _in_block(ip: str, block: dict[str, Any]) -> bool:
    addr = ipaddress.ip_address(ip)
    if addr not in ipaddress.ip_network(block["cidr"]):
        return False
    return not any(addr in ipaddress.ip_network(x) for x in block.get("except") or [])


def _peer_matches(peer: dict[str, Any], other: Endpoint, policy_ns: str) -> bool:
    if "ipBlock" in peer:
        return _in_block(other.ip, peer["ipBlock"])
    if other.namespace is None:
        return False  # pod and namespace selectors only ever select pods
    if "namespaceSelector" in peer:
        if not matches(peer["namespaceSelector"], other.ns_labels):
            return False
    elif other.namespace != policy_ns:
        return False
    return matches(peer.get("podSelector"), other.labels)


def _port_matches(ports: list[dict[str, Any]] | None, dst: Endpoint, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for p in ports:
        if p.get("protocol", "TCP") != protocol:
            continue
        want = p.get("port")
        if want is None:
            return True
        if isinstance(want, str):
            if dst.ports.get(want) == port:
                return True
            continue
        if want == port or (p.get("endPort") and want <= port <= p["endPort"]):
            return True
    return False


def _selected(policies: list[dict], pod: Endpoint, direction: str) -> list[dict]:
    return [p for p in policies
            if pod.namespace is not None and p["metadata"]["namespace"] == pod.namespace
            and direction in p["spec"].get("policyTypes", ["Ingress"])
            and matches(p["spec"]["podSelector"], pod.labels)]


def egress_allowed(policies: list[dict], src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
    selecting = _selected(policies, src, "Egress")
    if not selecting:
        return True
    for pol in selecting:
        for rule in pol["spec"].get("egress") or []:
            if not _port_matches(rule.get("ports"), dst, port, protocol):
                continue
            to = rule.get("to")
            if not to or any(_peer_matches(peer, dst, src.namespace) for peer in to):
                return True
    return False


def ingress_allowed(policies: list[dict], src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
    if dst.namespace is None:
        return True
    selecting = _selected(policies, dst, "Ingress")
    if not selecting:
        return True
    for pol in selecting:
        for rule in pol["spec"].get("ingress") or []:
            if not _port_matches(rule.get("ports"), dst, port, protocol):
                continue
            frm = rule.get("from")
            if not frm or any(_peer_matches(peer, src, dst.namespace) for peer in frm):
                return True
    return False


def allowed(policies: list[dict], src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
    return egress_allowed(policies, src, dst, port, protocol) and ingress_allowed(policies, src, dst, port, protocol)
