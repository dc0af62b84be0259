# syntax=docker/dockerfile:1
# eventfeed: build with the Rust toolchain, run on a small Debian image.
#   docker build -t eventfeed .
#   docker run -e EVENTFEED_JWT_SECRET=… -e DATABASE_URL=postgres://… -p 3000:3000 eventfeed

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder
WORKDIR /src

# Dependencies first, in a layer of their own: it is rebuilt only when a
# manifest or the lock file changes, not on every source edit. The workspace
# has two members, so both need a manifest and a stub target.
COPY Cargo.toml Cargo.lock ./
COPY bench/Cargo.toml bench/Cargo.toml
RUN mkdir -p src bench/src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > bench/src/main.rs \
    && cargo build --release --locked --package eventfeed \
    && rm -rf src bench/src

# The real sources. The migrations, sql/ and the web console are embedded at
# compile time (migrations/postgres/0002 and 0003 are links to files in sql/).
COPY build.rs ./
COPY migrations migrations
COPY sql sql
COPY console console
COPY src src
COPY bench/src bench/src
# Newer than the stub build, whatever the files' own times are.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --package eventfeed \
    && cp target/release/eventfeed /usr/local/bin/eventfeed

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 eventfeed \
    && useradd --system --uid 10001 --gid eventfeed --home-dir /data --shell /usr/sbin/nologin eventfeed \
    && mkdir -p /data \
    && chown eventfeed:eventfeed /data
COPY --from=builder /usr/local/bin/eventfeed /usr/local/bin/eventfeed

# Without DATABASE_URL the embedded store is /data/eventfeed.db: mount a volume there.
WORKDIR /data
USER eventfeed:eventfeed
ENV EVENTFEED_ADDR=0.0.0.0:3000
EXPOSE 3000
ENTRYPOINT ["/usr/local/bin/eventfeed"]
CMD ["serve"]
