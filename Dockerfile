# syntax=docker/dockerfile:1
#
# tollgate container image.
#   docker build -t tollgate .
#   docker run --rm -v tollgate-registry:/etc/tollgate/registry tollgate client add ID …
#   docker run -p 8080:8080 -e TOLLGATE_ISSUER=https://auth.example.com \
#     -v tollgate-registry:/etc/tollgate/registry:ro -v tollgate-data:/var/lib/tollgate tollgate
# The image holds no client registry: the operator mounts one (see docs/guides/docker.md).

# ---- build: compile TypeScript, then keep only the production dependencies ----
FROM node:24-bookworm-slim AS build
# A toolchain for native modules that have no prebuilt binary for this platform (argon2 ships
# prebuilt ones; the SQLite driver may need to compile).
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 make g++ \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src

# Dependencies first, so this layer is reused while only the source changes. Scripts are
# skipped here because the package's own "prepare" would compile a src/ not copied yet;
# `npm rebuild` then runs the dependencies' install scripts (native modules).
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund \
    && npm rebuild

COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
    && npm prune --omit=dev --no-audit --no-fund

# ---- runtime: compiled code, production dependencies, the container config ----
FROM node:24-bookworm-slim AS runtime
# MALLOC_ARENA_MAX: argon2 allocates 19 MiB per verification on libuv's threads, and glibc keeps
# a memory arena per thread; two arenas keep the resident size near 115 MiB instead of 250 MiB.
# MALLOC_MMAP_THRESHOLD_: a fixed threshold, so that buffer is mapped and unmapped each time
# instead of staying in the arena once glibc has raised its threshold (about 28 MiB less).
ENV NODE_ENV=production \
    MALLOC_ARENA_MAX=2 \
    MALLOC_MMAP_THRESHOLD_=131072 \
    TOLLGATE_CONFIG=/etc/tollgate/tollgate.yaml
WORKDIR /opt/tollgate

# Application files stay owned by root: the server only reads them.
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# Only the container config; the registry (clients_file) is mounted by the operator.
COPY deploy/docker/tollgate.yaml /etc/tollgate/tollgate.yaml

# State: signing keys (generated on first start) and the token store; and the folder of the
# client registry. Created owned by the unprivileged user so that a fresh named volume mounted
# on either inherits that ownership: the CLI (run from this image, as this user) writes the
# registry there, and the server, as the same user, can read it whatever the host's uids are.
RUN mkdir -p /var/lib/tollgate/keys /etc/tollgate/registry \
    && chown -R node:node /var/lib/tollgate /etc/tollgate/registry \
    && chmod -R 0700 /var/lib/tollgate
VOLUME ["/var/lib/tollgate"]

USER node
EXPOSE 8080

# Slim images have no curl: probe with Node's built-in fetch. Follows TOLLGATE_LISTEN__PORT.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.TOLLGATE_LISTEN__PORT||8080)+'/healthz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# The V8 flags npm start uses (docs/internals/performance.md has the figures): a 16 MiB young
# generation, which takes about 12% less CPU per token than a 4 MiB one, and an old generation
# grown by 30% per full collection instead of up to 4x, which kept resident memory under load at
# 114-136 MiB in the benchmark, with either store.
# tollgate.cjs sizes libuv's thread pool to the CPUs Node sees (2 to 4 threads): a cpuset limits
# them, a CPU quota does not, so under a quota set UV_THREADPOOL_SIZE with `docker run -e`.
ENTRYPOINT ["node", "--max-semi-space-size=16", "--heap-growing-percent=30", "dist/cli/tollgate.cjs"]
CMD ["serve"]
