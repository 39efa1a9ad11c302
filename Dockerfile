# Documentation, not built here: the machines mirrorstream is built on have no Docker engine.
#   docker build -t mirrorstream .
#   docker run --network host -e MIRRORSTREAM_API_KEY=... -e MIRRORSTREAM_TOKEN_SECRET=... \
#     -e MIRRORSTREAM_NATS_URL=nats://127.0.0.1:4222 -e MIRRORSTREAM_WEBRTC_ICE_PORT=50000 mirrorstream
# WebRTC media flows on UDP to the ICE ports (webrtc.icePort .. + icePortCount - 1): publish
# them (-p 50000-50007:50000-50007/udp) or use host networking; see docs/operations.md.
# Stopping drains for up to drainTimeoutMs (5 s) + ~1 s: give `docker stop` / compose
# `stop_grace_period` more than that (Docker's default is 10 s).

# build: everything, compiled, then only the production dependencies are kept
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY gateway/package.json gateway/
COPY receiver-sdk/package.json receiver-sdk/
RUN npm ci --no-audit --no-fund
COPY tsconfig.base.json tsconfig.json ./
COPY gateway gateway
COPY receiver-sdk receiver-sdk
COPY scripts/build-browser.ts scripts/
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# run: the built gateway and its production dependencies, as a user without privileges
FROM node:20-bookworm-slim
# listen on every interface of the container (the default 127.0.0.1 is unreachable from outside);
# environment beats a --config file, so set the host here or through the environment, not in the file
ENV NODE_ENV=production MIRRORSTREAM_HOST=0.0.0.0
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./
COPY --from=build --chown=node:node /app/node_modules node_modules
COPY --from=build --chown=node:node /app/gateway/package.json gateway/
COPY --from=build --chown=node:node /app/gateway/dist gateway/dist
COPY --from=build --chown=node:node /app/receiver-sdk/package.json receiver-sdk/
COPY --from=build --chown=node:node /app/receiver-sdk/dist receiver-sdk/dist
USER node
EXPOSE 8080
# ready, not just alive: a draining instance or one whose NATS is down is "unhealthy", which takes
# it out of rotation where a proxy reads Docker health. An orchestrator that *restarts* unhealthy
# containers would restart every gateway during a NATS outage: there, probe /healthz for restarts
# and /readyz for traffic instead.
HEALTHCHECK --interval=5s --timeout=2s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.MIRRORSTREAM_PORT||8080)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# SIGTERM drains (GOAWAY to receivers, leases handed back) within drainTimeoutMs + ~1 s
STOPSIGNAL SIGTERM
CMD ["node", "gateway/dist/cli.js"]
