# The kube-harden image for people with Docker (scripts/build-image.sh builds the same image
# without one): a static musl binary, no shell, a numeric non-root user, the function as entrypoint.
#   docker build -t ghcr.io/kube-harden/kube-harden:v0.1.0 .
FROM rust:1-alpine AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin kube-harden \
 && install -m 0755 target/release/kube-harden /kube-harden

FROM scratch
COPY --from=build /kube-harden /usr/local/bin/kube-harden
USER 65532:65532
WORKDIR /
LABEL org.opencontainers.image.source=https://github.com/kube-harden/kube-harden \
      org.opencontainers.image.licenses=Apache-2.0
ENTRYPOINT ["/usr/local/bin/kube-harden"]
