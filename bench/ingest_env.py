"""What the ingest benches share: the local stack on their own ports, an image site in its own process,
distinct-byte copies of real face photos, the plain-insightface baseline, and CPU accounting of the
local servers (they share the machine's cores with ingest, so their CPU is part of the picture).
"""

from __future__ import annotations

import io
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "t1.jpg", "astronaut.png")


def tagged_jpeg(jpeg: bytes, tag: str) -> bytes:
    """The same pixels, different bytes: a COM segment right after SOI (so dedup never skips a copy)."""
    payload = tag.encode()
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def to_jpeg(path: Path) -> bytes:
    from PIL import Image

    data = path.read_bytes()
    if data[:3] == b"\xff\xd8\xff":
        return data
    buf = io.BytesIO()
    Image.open(path).convert("RGB").save(buf, "JPEG", quality=92)
    return buf.getvalue()


def stack_env(home: Path, base: int, **extra: str) -> dict[str, str]:
    return {"CONSENTRY_HOME": str(home), "CONSENTRY_S3_ENDPOINT": f"http://127.0.0.1:{base}",
            "CONSENTRY_KAFKA_BOOTSTRAP": f"127.0.0.1:{base + 92}",
            "CONSENTRY_MILVUS_URI": f"http://127.0.0.1:{base + 540}",
            "CONSENTRY_STACK_RAY_PORT": str(base + 700), "CONSENTRY_ALLOW_PRIVATE_NETWORKS": "true",
            "CONSENTRY_TOPIC_PREFIX": "bench.", "RAY_USAGE_STATS_ENABLED": "0", **extra}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ImageSite:
    """Files served by ``python -m http.server`` in its own process (an image host is not ingest's CPU)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="consentry-bench-site-"))
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def add(self, path: str, body: bytes) -> str:
        target = self.dir / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> ImageSite:
        return self.serve([sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1",
                           "--directory", str(self.dir)])

    def serve(self, argv: list[str]) -> ImageSite:
        """Start the server ``argv`` (in its own session) and wait until it accepts connections on our port."""
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the bench's image site did not start")

    def close(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


class Feed:
    """A consented source over ``site`` and candidates for its images on the images topic."""

    def __init__(self, settings, site: ImageSite, source_id: str = "bench") -> None:
        from consentry.catalog.sources import SourceRegistry
        from consentry.clients.broker import KafkaBroker, KafkaConfig
        from consentry.clients.objectstore import S3Config, S3ObjectStore
        from consentry.core.records import Basis, Source

        self.s, self.site, self.source_id = settings, site, source_id
        SourceRegistry(S3ObjectStore(S3Config.from_settings(settings))).put(
            Source(id=source_id, match=f"127.0.0.1:{site.port}", basis=Basis.CONSENT))
        self.broker = KafkaBroker(KafkaConfig.from_settings(settings))

    def publish(self, bodies: dict[str, bytes]) -> int:
        """Serve ``bodies`` (path -> bytes) and publish one candidate each; returns how many."""
        from consentry.core.records import ImageCandidate

        p = self.broker.producer()
        for path, body in bodies.items():
            c = ImageCandidate(url=self.site.add(path, body), page_url=self.site.url("/"), job_id=self.source_id,
                               source_id=self.source_id)
            p.send(self.s.topic_images, c.key.encode(), c.to_json())
        p.flush()
        p.close()
        return len(bodies)


def copies(photos: dict[str, Path], tag: str, n: int) -> dict[str, bytes]:
    """``n`` distinct-byte copies of each photo: path -> JPEG bytes."""
    out = {}
    for k in range(n):
        for name in PHOTOS:
            path = f"/{tag}/{k}/{name}.jpg"
            out[path] = tagged_jpeg(to_jpeg(photos[name]), path)
    return out


# ----------------------------------------------------------------------------------------- CPU accounting
def _ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


def group_cpu_s(pgid: int) -> float:
    """CPU seconds used so far by the live processes of a process group (a server and its children)."""
    from consentry.infra.process import group_members

    return sum(_ticks(p) for p in group_members(pgid)) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuMeter:
    """CPU seconds each named process group used between start() and stop(), summed over windows."""

    groups: dict[str, int]
    used: dict[str, float] = field(default_factory=dict)
    _at: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        self._at = {n: group_cpu_s(p) for n, p in self.groups.items()}

    def stop(self) -> None:
        for n, p in self.groups.items():
            self.used[n] = self.used.get(n, 0.0) + group_cpu_s(p) - self._at[n]


def peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------------------- the baseline
class BareInsightface:
    """What a user's own loop would do with plain insightface and the same pair of models: per image,
    cv2.imdecode → SCRFD detect → norm_crop → ArcFace get_feat (onnxruntime intra-op threads as the
    product's, inter-op 1, spinning off)."""

    def __init__(self, det_path: Path, rec_path: Path, threads: int, det_size: int) -> None:
        import onnxruntime as ort
        from insightface.model_zoo import get_model

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.log_severity_level = 3
        self.det = get_model(str(det_path), providers=["CPUExecutionProvider"], sess_options=so)
        self.rec = get_model(str(rec_path), providers=["CPUExecutionProvider"], sess_options=so)
        self.det.prepare(ctx_id=-1, input_size=(det_size, det_size), det_thresh=0.5)

    def __call__(self, data: bytes) -> int:
        import cv2
        import numpy as np
        from insightface.utils import face_align

        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        boxes, kpss = self.det.detect(img, max_num=0)
        crops = [face_align.norm_crop(img, kpss[j], image_size=112) for j in range(len(boxes))]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            if crops:
                self.rec.get_feat(crops)
        return len(crops)

    def run(self, bodies: list[bytes]) -> tuple[float, int]:
        """(seconds, faces) for one pass over ``bodies``."""
        t = time.perf_counter()
        faces = sum(self(b) for b in bodies)
        return time.perf_counter() - t, faces
