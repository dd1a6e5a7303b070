# lisa-bot: the bot and its CPU inference in one image.
#
#   docker build -t lisa-bot .
#   docker run -p 8787:8787 -v lisa-data:/app/data -v lisa-models:/app/models \
#     -e DISCORD_TOKEN -e SLACK_BOT_TOKEN -e SLACK_APP_TOKEN lisa-bot
#
# GPU hosts: build with the CUDA provider libraries and a base that has the
# CUDA 12 + cuDNN 9 runtime, then run with `--gpus all`:
#   docker build -t lisa-bot:cuda \
#     --build-arg ONNXRUNTIME_NODE_INSTALL=cuda12 \
#     --build-arg RUNTIME_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 .
# (the runtime stage installs Node.js itself when the base image has none).
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
ENV NODE_ENV=production \
    LISABOT_WEB_HOST=0.0.0.0
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY adapters ./adapters
COPY models ./models
COPY config ./config
# An unprivileged user that exists on every base image we allow.
RUN useradd --system --uid 10001 --home-dir /app lisa \
    && mkdir -p data models && chown -R lisa data models
USER lisa
VOLUME ["/app/data", "/app/models"]
EXPOSE 8787
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD node -e "fetch('http://127.0.0.1:8787/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "src/bin.js", "serve", "--config", "config/default.yaml"]
