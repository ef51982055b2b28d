"""The ingest driver's HTTP endpoints: /healthz, /readyz and /metrics (for Kubernetes probes and Prometheus).

Readiness tells the truth: 503 while any worker is unreachable, failed, or has its circuit open
because S3 or Milvus is down. Metrics are the workers' merged tallies (the Ray actors count in
their own processes), exposed as Prometheus counters.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .metrics import COUNTERS


def prometheus_text(stats: dict[str, Any]) -> str:
    lines = []
    for k in COUNTERS:
        name = f"consentry_ingest_{k}_total"
        lines += [f"# TYPE {name} counter", f"{name} {int(stats.get(k, 0))}"]
    lines.append("# TYPE consentry_ingest_refused_by_reason_total counter")
    for reason, n in sorted(stats.get("refused_by_reason", {}).items()):
        lines.append(f'consentry_ingest_refused_by_reason_total{{reason="{reason}"}} {int(n)}')
    lines.append("# TYPE consentry_ingest_errors_total counter")
    for cls, n in sorted(stats.get("errors_by_class", {}).items()):
        lines.append(f'consentry_ingest_errors_total{{error_class="{cls}"}} {int(n)}')
    for k in ("workers", "workers_reachable", "circuits_open"):
        lines += [f"# TYPE consentry_ingest_{k} gauge", f"consentry_ingest_{k} {int(stats.get(k, 0))}"]
    lines += ["# TYPE consentry_ingest_ready gauge", f"consentry_ingest_ready {1 if stats.get('ready') else 0}"]
    return "\n".join(lines) + "\n"


class HealthServer:
    def __init__(self, host: str, port: int) -> None:
        self.latest: dict[str, Any] = {"ready": False, "starting": True}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stats = server.latest
                if self.path == "/healthz":
                    self._send(200, "application/json", json.dumps({"status": "ok"}))
                elif self.path == "/readyz":
                    body = {"ready": bool(stats.get("ready")), "workers": stats.get("workers", 0),
                            "workers_reachable": stats.get("workers_reachable", 0),
                            "circuits_open": stats.get("circuits_open", 0),
                            "waiting_for": stats.get("waiting_for", [])}
                    self._send(200 if body["ready"] else 503, "application/json", json.dumps(body))
                elif self.path == "/metrics":
                    self._send(200, "text/plain; version=0.0.4", prometheus_text(stats))
                else:
                    self._send(404, "application/json", json.dumps({"error": {"code": "not-found",
                                                                             "message": self.path}}))

            def _send(self, code: int, ctype: str, body: str) -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="ingest-health", daemon=True)

    def update(self, stats: dict[str, Any]) -> None:
        self.latest = dict(stats)

    def __enter__(self) -> HealthServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
