# The host and the AWS component in one small image: a static (musl) host binary on
# `scratch`, running as an unprivileged user. Build: docker build -t baton-host .
# Run: the environment alone configures one connector (see deploy/kubernetes/), or
# mount a host.toml and pass `serve --config /etc/baton/host.toml`.

FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add x86_64-unknown-linux-musl wasm32-wasip2
WORKDIR /src
COPY . .
# Symbols stripped: the image carries the binary only (CARGO_PROFILE_RELEASE_STRIP).
RUN CARGO_PROFILE_RELEASE_STRIP=symbols cargo build --release --locked -p host --target x86_64-unknown-linux-musl \
 && (cd guest && cargo build --release --locked --target wasm32-wasip2) \
 && mkdir -p /rootfs/usr/local/bin /rootfs/usr/local/lib/baton /rootfs/var/lib/baton /rootfs/tmp \
 && cp target/x86_64-unknown-linux-musl/release/host /rootfs/usr/local/bin/host \
 && cp guest/target/wasm32-wasip2/release/aws_connector.wasm /rootfs/usr/local/lib/baton/ \
 && chown -R 65532:65532 /rootfs/var/lib/baton \
 && chmod 1777 /rootfs/tmp

FROM scratch
COPY --from=build /rootfs/ /
ENV BATON_COMPONENT=/usr/local/lib/baton/aws_connector.wasm \
    BATON_STATE_DIR=/var/lib/baton \
    BATON_HOST_CACHE_DIR=/var/lib/baton/cache \
    BATON_HOST_LISTEN=0.0.0.0:9090 \
    BATON_LOG_FORMAT=json \
    TMPDIR=/tmp
USER 65532:65532
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/host"]
CMD ["serve"]
