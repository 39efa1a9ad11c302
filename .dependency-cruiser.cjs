/**
 * The layering of gateway/ and receiver-sdk/, checked in `npm test` (`npm run deps`).
 * docs/design.md: each concern keeps one home; a transport adapter never decides
 * failover; the failover code never touches a socket; the HTTP layer only translates
 * requests into calls on the gateway's public API; the core never imports http/,
 * telemetry/ or views/. Type-only imports count: a type is a dependency too.
 */
const GW = '^gateway/src/';
const CORE = `${GW}(streams|failover|health|rate|storage)/`;

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No import cycles, type-only ones included.',
      severity: 'error',
      from: { path: '^(gateway|receiver-sdk|producer)/src/' },
      to: { circular: true },
    },
    {
      name: 'core-is-pure',
      comment: 'streams, failover, health, rate and storage know no connection, transport, signaling, HTTP, metrics or view.',
      severity: 'error',
      from: { path: CORE },
      to: {
        path: [`${GW}(core|endpoints|sessions|signaling|transports|views|http|telemetry)/`, `${GW}(gateway|create|cli|index)\\.ts$`],
      },
    },
    {
      name: 'policies-below-streams',
      comment: 'Failure detection, scoring, rate and the failover policy are pure functions of what they are fed; streams apply them.',
      severity: 'error',
      from: { path: `${GW}(failover|health|rate)/` },
      to: { path: `${GW}(streams|storage)/` },
    },
    {
      name: 'core-uses-no-io-library',
      comment: 'The core is plain TypeScript: no socket, no HTTP, no transport or metrics library (storage/jetstream is the durable storage adapter).',
      severity: 'error',
      from: { path: [CORE, `${GW}core/`], pathNot: `${GW}storage/jetstream/` },
      to: {
        dependencyTypes: ['npm', 'npm-optional', 'core'],
        // the shared protocol, validation, the injected logger's type, random ids
        pathNot: ['node_modules/@mirrorstream/receiver/dist/protocol/', 'node_modules/(msgpackr|zod|pino)/', '^(node:)?crypto$'],
      },
    },
    {
      name: 'core-modules-stay-inside',
      comment: 'registry, ingest and the scheduler are core: no signaling, sessions, transports, views, HTTP or metrics.',
      severity: 'error',
      from: { path: `${GW}core/` },
      to: { path: [`${GW}(sessions|signaling|transports|views|http|telemetry)/`, `${GW}(gateway|create|cli|index)\\.ts$`] },
    },
    {
      name: 'transports-are-leaves',
      comment: 'A transport adapter moves bytes and measures; it never decides failover or touches streams.',
      severity: 'error',
      from: { path: `${GW}transports/` },
      to: { path: [`${GW}(core|streams|failover|health|rate|storage|endpoints|sessions|signaling|views|http|telemetry)/`, `${GW}(gateway|create|index)\\.ts$`] },
    },
    {
      name: 'transport-libraries-only-in-adapters',
      comment: 'werift, node-datachannel and @fails-components are imported by transports/ only (SDK: its runtime entries).',
      severity: 'error',
      from: { path: '^(gateway|receiver-sdk)/src/', pathNot: [`${GW}transports/`, '^receiver-sdk/src/(node|browser)\\.ts$'] },
      to: { path: 'node_modules/(werift|node-datachannel|@fails-components)/' },
    },
    {
      name: 'nats-only-in-the-jetstream-storage',
      comment: 'The NATS client is imported by storage/jetstream/ only.',
      severity: 'error',
      from: { path: '^(gateway|receiver-sdk)/src/', pathNot: `${GW}storage/jetstream/` },
      to: { path: 'node_modules/@nats-io/' },
    },
    {
      name: 'http-is-an-entry',
      comment: 'Only the public entry and the CLI use the HTTP layer.',
      severity: 'error',
      from: { path: '^(gateway|receiver-sdk)/src/', pathNot: [`${GW}http/`, `${GW}(index|cli)\\.ts$`, `${GW}cli/serve\\.ts$`] },
      to: { path: `${GW}http/` },
    },
    {
      name: 'telemetry-listens-from-outside',
      comment: 'Metrics read the public API and events; only http/ and the entries use them.',
      severity: 'error',
      from: { path: '^(gateway|receiver-sdk)/src/', pathNot: [`${GW}(http|telemetry)/`, `${GW}(index|cli)\\.ts$`] },
      to: { path: `${GW}telemetry/` },
    },
    {
      name: 'views-are-for-the-outside',
      comment: 'API-shaped snapshots: built by the facade for http/ and telemetry/, never used by the core.',
      severity: 'error',
      from: { path: '^(gateway|receiver-sdk)/src/', pathNot: [`${GW}(views|http|telemetry)/`, `${GW}(gateway|index)\\.ts$`] },
      to: { path: `${GW}views/` },
    },
    {
      name: 'gateway-speaks-only-the-protocol-entry',
      comment:
        'The gateway shares the wire protocol, errors, Clock and emitter with the SDK through @mirrorstream/receiver/protocol, nothing else of it. The CLI warm-up (the SDK receiver against its own HTTP port) and `mirrorstream receive` are the clients of the gateway inside it.',
      severity: 'error',
      from: { path: GW, pathNot: [`${GW}warm-up\\.ts$`, `${GW}cli/receive\\.ts$`] },
      to: { path: '(^|/)(receiver-sdk|@mirrorstream/receiver)/', pathNot: '/protocol/' },
    },
    {
      name: 'clients-only-in-the-cli',
      comment: 'The producer client serves the CLI commands publish, streams, endpoints, token and receive (a token with the API key), nothing else of the gateway.',
      severity: 'error',
      from: { path: GW, pathNot: `${GW}cli/(publish|admin|receive)\\.ts$` },
      to: { path: '(^|/)(producer|@mirrorstream/producer)/' },
    },
    {
      name: 'protocol-is-self-contained',
      comment: 'The shared protocol entry imports nothing but itself and msgpackr: no SDK logic, no Node built-ins.',
      severity: 'error',
      from: { path: '^receiver-sdk/src/protocol/' },
      to: { pathNot: ['^receiver-sdk/src/protocol/', 'node_modules/msgpackr/'] },
    },
    {
      name: 'streams-never-see-the-engine',
      comment: 'A stream decides and sends; how a decision is stored (the control stream), where chunks live and which engine holds them are behind its ports (DecisionPort, StreamLog).',
      severity: 'error',
      from: { path: `${GW}streams/` },
      to: { path: `${GW}storage/` },
    },
    {
      name: 'decision-port-is-plain',
      comment: 'The decision port (local or controlled) knows the decision and control types only, not the stream that uses it.',
      severity: 'error',
      from: { path: `${GW}streams/decisions\\.ts$` },
      to: { pathNot: `${GW}streams/types\\.ts$` },
    },
    {
      name: 'registry-knows-no-timing',
      comment: 'The registry and its parts tell what happened (events); when a stream is measured or decided again is the scheduler\'s.',
      severity: 'error',
      from: { path: `${GW}core/(registry|endpoint-directory|build-stream|stored-specs|stream-members)\\.ts$` },
      to: { path: `${GW}core/(scheduler|timers)\\.ts$` },
    },
    {
      name: 'only-composition-builds-parts',
      comment: 'compose.ts builds the registry, scheduler, timer queue, sessions and signaling in dependency order; everyone else sees their types only.',
      severity: 'error',
      from: { path: GW, pathNot: `${GW}compose\\.ts$` },
      to: { path: `${GW}(core/(registry|scheduler|timers)|sessions/sessions|signaling/index)\\.ts$`, dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'sdk-lifecycle-knows-links-only',
      comment: "The receiver's lifecycle state machine moves links through its states: it sees the link port, the clock and error types, no frame, transport or stream state.",
      severity: 'error',
      from: { path: '^receiver-sdk/src/lifecycle\\.ts$' },
      to: { pathNot: '^receiver-sdk/src/(link|receiver-types|protocol/clock|protocol/errors)\\.ts$' },
    },
    {
      name: 'sdk-logic-knows-no-transport',
      comment: 'Lifecycle, gateway rotation, reports, inbound ordering and the receiver core dial through the Dialer port: no transport module, no dialer wiring.',
      severity: 'error',
      from: { path: '^receiver-sdk/src/(lifecycle|gateway-rotation|reports|inbound|receiver|silence-watch|path-rtt)\\.ts$' },
      to: { path: '^receiver-sdk/src/(transports/|route-dialers\\.ts$|webrtc-receiver\\.ts$)' },
    },
    {
      name: 'sdk-transports-are-leaves',
      comment: 'An SDK transport moves bytes behind the link port: it imports the port, the protocol and other transports only.',
      severity: 'error',
      from: { path: '^receiver-sdk/src/transports/' },
      to: { path: '^receiver-sdk/src/', pathNot: '^receiver-sdk/src/(transports/|protocol/|link\\.ts$)' },
    },
    {
      name: 'sdk-is-browser-safe',
      comment: 'Node built-ins and native modules stay behind the Node entry.',
      severity: 'error',
      from: { path: '^receiver-sdk/src/', pathNot: '^receiver-sdk/src/(node\\.ts$|node/)' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'declared-dependencies-only',
      comment: "Each package imports only what its own package.json declares (workspace symlinks hide a missing declaration).",
      severity: 'error',
      from: { path: '^(gateway|receiver-sdk|producer)/src/' },
      // (dependency-cruiser also tags a declared optional peer's subpath npm-no-pkg, hence dependencyTypesNot)
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown', 'npm-dev', 'unknown', 'undetermined'], dependencyTypesNot: ['npm-peer'] },
    },
    {
      name: 'resolvable',
      comment: 'Every import resolves (a typo or a missing package is an error here, not at run time).',
      severity: 'error',
      from: { path: '^(gateway|receiver-sdk|producer)/src/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: ['node_modules', '(^|/)dist/'] },
    tsPreCompilationDeps: true,
    // keep workspace packages as npm dependencies, so their declaration is checked
    preserveSymlinks: true,
    tsConfig: { fileName: 'tsconfig.base.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'node', 'types', 'default'],
      extensions: ['.ts', '.js', '.d.ts'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
