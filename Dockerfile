# syntax=docker/dockerfile:1
# The erlmcp-bot image: `docker build -t erlmcp-bot:dev .` (BuildKit, the default builder, for the
# cache mounts). deploy/kubernetes/deployment.yaml runs it.
# - Built with the Rust toolchain the project is tested with (1.95; the crates need 1.94) from
#   Cargo.lock as committed (--locked). The cache mounts keep the registry and target/ between
#   builds; the binary is copied out of target/ in the same step, as a cache mount is not part of
#   the image.
# - Runtime: Debian bookworm-slim (the builder's glibc) with CA certificates only, for TLS to
#   Slack, PostgreSQL, the Kubernetes API servers, Route53 and webhooks. No shell tools are used.
# - The playbooks in playbooks/ and the migrations are compiled into the binary; operator
#   playbooks are mounted and named by ERLMCP_PLAYBOOKS_DIR.
# - User 10001, not root (the Deployment's runAsUser is the same, and tests/it/manifests.rs checks
#   that). Working directory /var/lib/erlmcp-bot, owned by that user: the default database is
#   sqlite://erlmcp-bot.db there, which works under `docker run`; under Kubernetes the root file
#   system is read-only and DATABASE_URL is PostgreSQL.
# - The bot is PID 1 and handles SIGTERM itself (it hands its runs over, then exits).

FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p erlmcp-bot \
    && install -m 0755 target/release/erlmcp-bot /erlmcp-bot

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 erlmcp-bot \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/erlmcp-bot --create-home \
       --shell /usr/sbin/nologin erlmcp-bot
COPY --from=builder /erlmcp-bot /usr/local/bin/erlmcp-bot
USER 10001:10001
WORKDIR /var/lib/erlmcp-bot
# 3000: Slack endpoints and the probes (ERLMCP_LISTEN); 9464: /metrics (ERLMCP_METRICS_LISTEN), set
# here so that publishing the Slack port never publishes the metrics with it.
ENV ERLMCP_METRICS_LISTEN=0.0.0.0:9464
EXPOSE 3000 9464
ENTRYPOINT ["/usr/local/bin/erlmcp-bot"]
CMD ["serve"]
