/**
 * The layering of gateway/ and receiver-sdk/, checked in `npm test` (`npm run deps`).
 * DESIGN.md "Layout": each concern keeps one home; a transport adapter never decides
 * failover; the failover code never touches a socket; the HTTP layer only translates
 * requests into calls on the gateway's public API; the core never imports http/,
 * telemetry/ or views/. Type-only imports count: a type is a dependency too.
 */
const GW = '^gateway/src/';
const CORE = `${GW}(streams|failover|health|rate|log)/`;

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No import cycles, type-only ones included.',
      severity: 'error',
      from: { path: '^(gateway|receiver-sdk)/src/' },
      to: { circular: true },
    },
    {
      name: 'core-is-pure',
      comment: 'streams, failover, health, rate and log know no connection, transport, signaling, HTTP, metrics or view.',
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
      to: { path: `${GW}(streams|log)/` },
    },
    {
      name: 'core-uses-no-io-library',
      comment: 'The core is plain TypeScript: no socket, no HTTP, no transport or metrics library (log/jetstream is the durable log adapter).',
      severity: 'error',
      from: { path: [CORE, `${GW}core/`], pathNot: `${GW}log/jetstream/` },
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
      to: { path: [`${GW}(core|streams|failover|health|rate|log|endpoints|sessions|signaling|views|http|telemetry)/`, `${GW}(gateway|create|index)\\.ts$`] },
    },
    {
      name: 'transport-libraries-only-in-adapters',
      comment: 'werift, node-datachannel and @fails-components are imported by transports/ only (SDK: its runtime entries).',
      severity: 'error',
      from: { path: '^(gateway|receiver-sdk)/src/', pathNot: [`${GW}transports/`, '^receiver-sdk/src/(node|browser)\\.ts$'] },
      to: { path: 'node_modules/(werift|node-datachannel|@fails-components)/' },
    },
    {
      name: 'nats-only-in-the-jetstream-log',
      comment: 'The NATS client is imported by log/jetstream/ only.',
      severity: 'error',
      from: { path: '^(gateway|receiver-sdk)/src/', pathNot: `${GW}log/jetstream/` },
      to: { path: 'node_modules/@nats-io/' },
    },
    {
      name: 'http-is-an-entry',
      comment: 'Only the public entry and the CLI use the HTTP layer.',
      severity: 'error',
      from: { path: '^(gateway|receiver-sdk)/src/', pathNot: [`${GW}http/`, `${GW}(index|cli)\\.ts$`] },
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
        'The gateway shares the wire protocol, errors, Clock and emitter with the SDK through @mirrorstream/receiver/protocol, nothing else of it. The CLI warm-up is the one client of the gateway inside it: it runs the SDK receiver against its own HTTP port.',
      severity: 'error',
      from: { path: GW, pathNot: `${GW}warm-up\\.ts$` },
      to: { path: '(^|/)(receiver-sdk|@mirrorstream/receiver)/', pathNot: '/protocol/' },
    },
    {
      name: 'protocol-is-self-contained',
      comment: 'The shared protocol entry imports nothing but itself and msgpackr: no SDK logic, no Node built-ins.',
      severity: 'error',
      from: { path: '^receiver-sdk/src/protocol/' },
      to: { pathNot: ['^receiver-sdk/src/protocol/', 'node_modules/msgpackr/'] },
    },
    {
      name: 'sdk-is-browser-safe',
      comment: 'Node built-ins and native modules stay behind the Node entry.',
      severity: 'error',
      from: { path: '^receiver-sdk/src/', pathNot: '^receiver-sdk/src/node\\.ts$' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'declared-dependencies-only',
      comment: "Each package imports only what its own package.json declares (workspace symlinks hide a missing declaration).",
      severity: 'error',
      from: { path: '^(gateway|receiver-sdk)/src/' },
      // (dependency-cruiser also tags a declared optional peer's subpath npm-no-pkg, hence dependencyTypesNot)
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown', 'npm-dev', 'unknown', 'undetermined'], dependencyTypesNot: ['npm-peer'] },
    },
    {
      name: 'resolvable',
      comment: 'Every import resolves (a typo or a missing package is an error here, not at run time).',
      severity: 'error',
      from: { path: '^(gateway|receiver-sdk)/src/' },
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
