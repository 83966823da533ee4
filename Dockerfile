# syntax=docker/dockerfile:1
# Sluice container image: a static-ish Rust binary on a distroless, non-root base.
#
#   docker build -t ghcr.io/sluice-cdc/sluice:0.1.0 .
#   docker run --rm -v $PWD/sluice.yaml:/etc/sluice/sluice.yaml:ro ghcr.io/sluice-cdc/sluice:0.1.0
#
# The Helm chart (helm/sluice) mounts its ConfigMap at /etc/sluice/sluice.yaml.

# --- build ---------------------------------------------------------------------------------
FROM rust:1-bookworm AS builder
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# librdkafka is built from source by rdkafka-sys (CMake); its CMake build includes
# <curl/curl.h> unconditionally, hence the curl headers. It links OpenSSL (TLS and SCRAM
# to Kafka), which the distroless cc base ships (libssl3).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake g++ libcurl4-openssl-dev libssl-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# The binary dynamically links zlib (libz-sys finds the system library); collect it so the
# final stage does not depend on the base image shipping it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p sluice \
    && install -D -m 0755 target/release/sluice /out/usr/local/bin/sluice \
    && multiarch="$(gcc -print-multiarch)" \
    && mkdir -p "/out/usr/lib/$multiarch" \
    && libz="$(ldd /out/usr/local/bin/sluice | awk '/libz\.so/ {print $3}')" \
    && if [ -n "$libz" ]; then install -D -m 0644 "$libz" "/out/usr/lib/$multiarch/libz.so.1"; fi \
    && /out/usr/local/bin/sluice --version

# --- run -----------------------------------------------------------------------------------
FROM gcr.io/distroless/cc-debian12:nonroot

LABEL org.opencontainers.image.title="sluice" \
      org.opencontainers.image.description="PostgreSQL change data capture to Kafka, exactly once" \
      org.opencontainers.image.source="https://github.com/sluice-cdc/sluice" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=builder /out/usr/lib/ /usr/lib/
COPY --from=builder /out/usr/local/bin/sluice /usr/local/bin/sluice

# 65532: distroless's nonroot user (the chart's runAsUser).
USER 65532:65532
ENV SLUICE_LOG_FORMAT=json

# 9187: admin endpoint (/metrics /healthz /readyz); 8081: bundled schema registry.
EXPOSE 9187 8081

ENTRYPOINT ["/usr/local/bin/sluice"]
CMD ["run", "--config", "/etc/sluice/sluice.yaml"]
