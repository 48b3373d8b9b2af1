# The lifeboat binary and the client tools its assets call, on Debian 12.
#
#   docker build -t lifeboat .
#   docker run --rm -v /etc/lifeboat:/etc/lifeboat -e LIFEBOAT_PASSWORD lifeboat \
#       --config /etc/lifeboat/lifeboat.toml status
#
# As a daemon with docker-volume assets, give it the Docker socket and the volumes at the
# same path as on the host (Lifeboat reads a volume at the mount point Docker reports):
#
#   docker run -d --name lifeboat -p 127.0.0.1:9184:9184 \
#       -v /var/run/docker.sock:/var/run/docker.sock \
#       -v /var/lib/docker/volumes:/var/lib/docker/volumes \
#       -v /etc/lifeboat:/etc/lifeboat -e LIFEBOAT_PASSWORD -e LIFEBOAT_API_TOKEN \
#       lifeboat --config /etc/lifeboat/lifeboat.toml daemon --listen 0.0.0.0:9184
#
# The catalog, the audit log and incident reports go to .lifeboat/ beside the plan, so the
# plan's directory is mounted writable. Off loopback the daemon needs its API token.
#
# Drills start scratch database servers; build with --build-arg DRILL_SERVERS=1 to include
# PostgreSQL, MariaDB and Redis servers (about 300 MB more). Debian 12's pg_dump is 15: for
# newer PostgreSQL servers, add the PGDG repository's postgresql-client-NN.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin lifeboat

FROM debian:bookworm-slim
ARG DRILL_SERVERS=
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates tzdata restic \
      postgresql-client mariadb-client redis-tools sqlite3 \
      ${DRILL_SERVERS:+postgresql mariadb-server redis-server} \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/lifeboat /usr/local/bin/lifeboat
# Streamed dumps wait here on their way to the repository: a volume, not the image's layer.
ENV LIFEBOAT_SPOOL_DIR=/var/spool/lifeboat
RUN mkdir -p /var/spool/lifeboat
VOLUME ["/var/spool/lifeboat"]
EXPOSE 9184
ENTRYPOINT ["lifeboat"]
CMD ["--help"]
