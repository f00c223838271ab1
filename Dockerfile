# syntax=docker/dockerfile:1
# The webhook as a static binary on distroless: no shell, no package manager,
# user 65532. Build with `make image` (needs a Docker engine):
#
#   docker build --build-arg VERSION=v1.2.3 -t ghcr.io/jwe-webhook/jwe-webhook:v1.2.3 .

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY cmd/ cmd/
COPY internal/ internal/
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/webhook ./cmd/webhook

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="jwe-webhook" \
      org.opencontainers.image.description="Kubernetes mutating admission webhook that decrypts JWE values in Secrets" \
      org.opencontainers.image.source="https://github.com/jwe-webhook/jwe-webhook" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/webhook /webhook
USER 65532:65532
EXPOSE 8443 9090
ENTRYPOINT ["/webhook"]
