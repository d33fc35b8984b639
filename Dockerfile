# hurdmesh:dev, one image for every service (kernel, proc, auth, init): the
# command picks the service, e.g. `docker run hurdmesh:dev proc`.
#
#   docker build -t hurdmesh:dev .
#
# No `# syntax=` line on purpose: it would make BuildKit pull a frontend image.
# The file works with BuildKit and with the legacy builder.
#
# Dependencies: by default `npm ci` runs in the build (it needs the npm
# registry; its prepare step generates packages/proto/gen with buf). For a
# machine whose builds cannot reach the registry, scripts/docker/build-images.sh
# --deps host runs `npm ci` on the host, wraps that node_modules in an image
# and passes it as DEPS_IMAGE with DEPS=host; the build then only generates code.
#
# The runtime stage holds compiled JavaScript (the workspaces' dist/) and the
# production dependencies only: no TypeScript compiler, tsx, buf or test
# tools, and no type declarations or source maps of dependencies.
# BASE_IMAGE: Node 24 (CI builds a local stand-in, hurdmesh-base/node:24,
# with scripts/docker/base-images.sh).
ARG BASE_IMAGE=node:24-bookworm-slim
ARG DEPS_IMAGE=${BASE_IMAGE}

FROM ${DEPS_IMAGE} AS build
ARG DEPS=registry
WORKDIR /opt/hurdmesh
# manifests first, so that the dependency layer is reused while they don't change
COPY package.json package-lock.json buf.yaml buf.gen.yaml tsconfig.base.json ./
COPY scripts/build.mjs scripts/
COPY proto/ proto/
COPY packages/boot/package.json packages/boot/
COPY packages/cli/package.json packages/cli/
COPY packages/iohelp/package.json packages/iohelp/
COPY packages/libhurd/package.json packages/libhurd/
COPY packages/mach/package.json packages/mach/
COPY packages/proto/package.json packages/proto/
COPY packages/telemetry/package.json packages/telemetry/
COPY packages/telemetry-sdk/package.json packages/telemetry-sdk/
COPY packages/web/package.json packages/web/
COPY services/auth/package.json services/auth/
COPY services/init/package.json services/init/
COPY services/kernel/package.json services/kernel/
COPY services/proc/package.json services/proc/
# (npm ci's prepare step builds what is here: the generated protos.)
RUN if [ "$DEPS" = host ]; then \
      [ -d node_modules/.bin ] || { echo "DEPS=host: the DEPS_IMAGE has no /opt/hurdmesh/node_modules" >&2; exit 1; }; \
      npm run gen; \
    else \
      npm ci --no-audit --no-fund; \
    fi
COPY . .
# Everything compiled, then the devDependencies and what runs nowhere go.
RUN npm run build && \
    npm prune --omit=dev --no-audit --no-fund && \
    find node_modules -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.md' \) -exec rm -f {} + && \
    rm -rf packages/proto/gen tests bench scratch

FROM ${BASE_IMAGE} AS runtime
ENV NODE_ENV=production HURD_STATE_DIR=/var/lib/hurdmesh
WORKDIR /opt/hurdmesh
COPY --from=build /opt/hurdmesh /opt/hurdmesh
# uid 10001 gets a name and a home (the state folder); written by hand so that
# it works on Debian-based and busybox-based images alike
# `hurd` on PATH (`docker compose exec kernel hurd ps`): npm ci ran before the
# sources were copied, so it could not link the workspace's bin then.
RUN ln -s /opt/hurdmesh/packages/cli/bin/hurd.mjs /usr/local/bin/hurd && \
    echo 'hurd:x:10001:10001:hurdmesh:/var/lib/hurdmesh:/usr/sbin/nologin' >>/etc/passwd && \
    echo 'hurd:x:10001:' >>/etc/group && \
    mkdir -p /var/lib/hurdmesh && chown 10001:10001 /var/lib/hurdmesh && chmod 700 /var/lib/hurdmesh
USER 10001:10001
EXPOSE 7400 7401
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=2s --timeout=5s --start-period=120s --retries=5 \
  CMD ["node", "/opt/hurdmesh/bin/grpc-health.mjs"]
ENTRYPOINT ["node", "/opt/hurdmesh/bin/hurdmesh-service.mjs"]
CMD ["kernel"]
