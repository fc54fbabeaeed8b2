# claude-pool: the gateway and the Claude Code CLI it runs, in one image.
#
#   docker build -t claude-pool .
#   docker run -p 8000:8000 -v claude-pool-data:/data -e API_KEYS=sk-... \
#     -e CLAUDE_CODE_OAUTH_TOKEN=sk-ant-oat01-... -e CLAUDE_POOL_WORKER__BARE=false claude-pool
# (an OAuth token is read only outside the CLI's bare mode; ANTHROPIC_API_KEY works in both)
#
# Base images are build arguments, so the image can be built from locally made bases where
# public registries are out of reach (scripts/image-smoke.sh does that).
ARG RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim

# ---- build: dependencies first (cached until a manifest or the lock file changes), then the source
FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY actors/Cargo.toml actors/
COPY benches/load/Cargo.toml benches/load/
# The fake Anthropic API for tests is a workspace member the image never builds: its manifest
# and empty stand-ins (kept) are all the workspace needs of it.
COPY tests/fake-anthropic/Cargo.toml tests/fake-anthropic/
# Empty targets stand in for the sources so that only the dependencies are compiled here.
RUN mkdir -p src actors/src/bin/fake_claude benches/load/src tests/fake-anthropic/src \
    && echo 'fn main() {}' > src/main.rs && touch src/lib.rs actors/src/lib.rs \
    && echo 'fn main() {}' > actors/src/bin/fake_claude/main.rs \
    && echo 'fn main() {}' > benches/load/src/main.rs \
    && echo 'fn main() {}' > benches/hot_paths.rs \
    && echo 'fn main() {}' > tests/fake-anthropic/src/main.rs && touch tests/fake-anthropic/src/lib.rs \
    && cargo build --release --locked -p claude-pool --bin claude-pool \
    && rm -rf src actors/src benches/load/src benches/hot_paths.rs
COPY src src
COPY actors/src actors/src
COPY benches benches
COPY migrations migrations
# The stand-ins are older than the sources, so cargo rebuilds the project's own crates.
RUN touch src/main.rs src/lib.rs actors/src/lib.rs \
    && cargo build --release --locked -p claude-pool --bin claude-pool \
    && install -D -m 0755 target/release/claude-pool /out/claude-pool

# ---- runtime: Debian slim, Node.js, the pinned Claude Code CLI, tini as PID 1
# (npm trusts the system's certificate authorities too, so a base that trusts a TLS-inspecting
# proxy can build the image behind it)
FROM ${RUNTIME_IMAGE}
ARG CLAUDE_CODE_VERSION=2.1.197
ARG APP_UID=10001
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates nodejs npm tini \
    && NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
       npm install -g --no-audit --no-fund --loglevel=error "@anthropic-ai/claude-code@${CLAUDE_CODE_VERSION}" \
    && npm cache clean --force \
    && apt-get purge -y npm && apt-get autoremove -y \
    && rm -rf /var/lib/apt/lists/* /root/.npm \
    && groupadd --system --gid "${APP_UID}" claude-pool \
    && useradd --system --uid "${APP_UID}" --gid claude-pool --home-dir /data --shell /usr/sbin/nologin claude-pool \
    && mkdir -p /data /app/config /app/certs \
    && chown claude-pool:claude-pool /data /app/certs
COPY --from=build /out/claude-pool /usr/local/bin/claude-pool
COPY config/claude-pool.toml /app/config/claude-pool.toml
# Data: SQLite database, the workers' HOME (transcripts, needed to resume conversations) and
# their working directories. certs/: the admin console's TLS certificate (mounted or generated).
ENV CLAUDE_POOL_STORE__DATABASE_URL=sqlite:///data/claude-pool.sqlite \
    CLAUDE_POOL_WORKER__HOME=/data/claude-home \
    CLAUDE_POOL_WORKER__WORK_ROOT=/data/sessions \
    HOME=/data
WORKDIR /app
VOLUME ["/data"]
USER ${APP_UID}:${APP_UID}
EXPOSE 8000 8443
HEALTHCHECK --interval=15s --timeout=6s --start-period=60s --retries=3 \
    CMD ["claude-pool", "healthcheck"]
# tini reaps every worker process and forwards SIGTERM to the server, which stops the pool
# within server.shutdown_grace.
ENTRYPOINT ["/usr/bin/tini", "--", "claude-pool"]
CMD ["serve"]
