# lisa-bot: the bot and its inference in one image; the command picks the role.
# Written without a Docker engine at hand (none on the machine it was made on):
# check it on yours before relying on it. docs/deploy.md has the whole story.
#
#   docker build -t lisa-bot .
#   docker run -p 127.0.0.1:8787:8787 -e DISCORD_TOKEN -e SLACK_BOT_TOKEN -e SLACK_APP_TOKEN lisa-bot
#     serves the web chat (and Discord / Slack when their tokens are set) on the toy pack.
#   Your own pack, from a volume:  -v lisa-packs:/packs -e LISABOT_MODEL_PATH=/packs/lisa-7b
#   The SQLite store, kept:        -v lisa-data:/app/data
#   Any other command:             docker run --rm lisa-bot ask --help
#
# GPU hosts: build with the CUDA provider libraries and a base that has the
# CUDA 12 + cuDNN 9 runtime, then run with `--gpus`:
#   docker build -t lisa-bot:cuda \
#     --build-arg ONNXRUNTIME_NODE_INSTALL=cuda12 \
#     --build-arg RUNTIME_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 .
# (the runtime stage installs Node.js itself when the base image has none).
#
# Scale-out: `serve` queues turns in Redis and GPU `worker`s run them (one per GPU;
# config/compose.yaml wires it all: docker compose -f config/compose.yaml up):
#   docker run -p 127.0.0.1:8787:8787 -e LISABOT_QUEUE_URL=redis://HOST:6379/0 \
#     -e LISABOT_STORE_URL=redis://HOST:6379/0 -v lisa-packs:/packs:ro -e LISABOT_MODEL_PATH=/packs/NAME lisa-bot
#   docker run --gpus device=0 -e LISABOT_QUEUE_URL=redis://HOST:6379/0 \
#     -e LISABOT_STORE_URL=redis://HOST:6379/0 -v lisa-packs:/packs:ro -e LISABOT_MODEL_PATH=/packs/NAME lisa-bot:cuda worker
#   (the worker's /metrics, /healthz and /readyz are on port 9465; serve's on the web chat's 8787)
#
# The experimental webgpu provider needs a Vulkan loader and driver
# (libvulkan1 plus your GPU's ICD); this image has neither, so it falls back to cpu.

ARG NODE_IMAGE=node:20-bookworm
ARG RUNTIME_IMAGE=node:20-bookworm-slim

# --- dependencies: native modules (sqlite3) build here, with the toolchain ---
FROM ${NODE_IMAGE} AS deps
ARG ONNXRUNTIME_NODE_INSTALL=skip
ENV ONNXRUNTIME_NODE_INSTALL=${ONNXRUNTIME_NODE_INSTALL}
WORKDIR /app
COPY package.json package-lock.json ./
# npm 11 skips onnxruntime-node's install step (allowScripts); npm 10 runs it, and
# it reads ONNXRUNTIME_NODE_INSTALL. Either way the CUDA libraries come only when asked for.
RUN npm ci --omit=dev \
    && if [ "$ONNXRUNTIME_NODE_INSTALL" != skip ] && [ ! -e node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so ]; then \
         node node_modules/onnxruntime-node/script/install.js; fi \
    && npm cache clean --force

# --- runtime ---
FROM ${RUNTIME_IMAGE}
ARG NODE_MAJOR=20
# A CUDA base image has no Node.js: install the same major version (NodeSource).
RUN if ! command -v node >/dev/null; then \
      apt-get update && apt-get install -y --no-install-recommends ca-certificates curl gnupg \
      && curl -fsSL https://deb.nodesource.com/setup_${NODE_MAJOR}.x | bash - \
      && apt-get install -y --no-install-recommends nodejs \
      && rm -rf /var/lib/apt/lists/*; \
    fi
# jemalloc gives back the memory libvips and onnxruntime free on their threads,
# where glibc's malloc keeps it (docs/memory.md); src/bin.js preloads it when installed.
RUN apt-get update && apt-get install -y --no-install-recommends libjemalloc2 \
    && rm -rf /var/lib/apt/lists/*
# In a container, loopback would hide the web chat and the health servers from
# published ports and from Prometheus: listen on every interface.
ENV NODE_ENV=production \
    LISABOT_WEB_HOST=0.0.0.0 \
    LISABOT_WORKER_METRICS_HOST=0.0.0.0 \
    LISABOT_SERVE_METRICS_HOST=0.0.0.0
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY adapters ./adapters
# The code under models/ only: packs generated or converted into models/ on the
# build machine (models/toy, a 14 GB LISA-7B) stay out of the image, and
# BuildKit does not even send them. Packs belong on the /packs volume.
COPY models/generator ./models/generator
COPY models/converter ./models/converter
COPY config ./config
# An unprivileged user that exists on every base image we allow. /packs is for
# model packs on a volume: it is not /app/models, which holds code (the toy
# pack's generator, the converter) that a volume there would hide and keep stale
# across image updates. A named volume mounted on an empty folder takes the
# folder's owner, so lisa can write packs into a fresh one.
RUN useradd --system --uid 10001 --home-dir /app lisa \
    && mkdir -p data models /packs && chown -R lisa data models /packs
USER lisa
VOLUME ["/app/data"]
# 8787: the web chat (and serve's /metrics, /readyz); 9465: a worker's health
# server; 9464: serve's when the web chat is off. config/default.yaml sets them.
EXPOSE 8787 9464 9465
# One check for every role: HEALTHCHECK_URL when set, else /readyz on the port
# of the role PID 1 runs (`worker`, or serve with or without the web chat), with
# the same LISABOT_* overrides the process reads. (Not LISABOT_HEALTH_URL: an
# unknown LISABOT_ variable is a config error.) A loading model is "starting",
# not unhealthy: start-period covers a large pack's load.
HEALTHCHECK --interval=30s --timeout=5s --start-period=300s --retries=3 \
  CMD ["node", "-e", "const a=require('fs').readFileSync('/proc/1/cmdline','utf8').split('\\0'),e=process.env;const p=a.includes('worker')?e.LISABOT_WORKER_METRICS_PORT||9465:/^(false|0)$/.test(e.LISABOT_WEB_ENABLED||'')?e.LISABOT_SERVE_METRICS_PORT||9464:e.LISABOT_WEB_PORT||8787;fetch(e.HEALTHCHECK_URL||'http://127.0.0.1:'+p+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The program, not `node src/bin.js`: its first lines choose the allocator, then exec Node (same PID).
ENTRYPOINT ["./src/bin.js"]
CMD ["serve"]
