import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLI_OPTIONS, cliProgram, cliSettings, flagOf, formatDefault, type CliSettings } from '../../gateway/src/cli/gateway-options.js';
import { CONFIG_FIELDS, configField } from '../../gateway/src/config-fields.js';
import { ConfigError, layeredConfig, parseConfig } from '../../gateway/src/config.js';
import { CONFIG_DOCS_PATH, renderConfigDocs } from '../../scripts/config-docs.js';

/** The CLI's reading of a command line and an environment, without a process. */
function read(argv: string[], env: Record<string, string> = {}): CliSettings {
  const program = cliProgram().exitOverride();
  program.parse(argv, { from: 'user' });
  return cliSettings(program, env);
}

/** The ConfigError a reading throws. */
function refused(argv: string[], env: Record<string, string> = {}): ConfigError {
  try {
    read(argv, env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('the CLI took it');
}

describe('CLI options: one table, typed by the schema', () => {
  it('keeps every published flag and variable name (renaming one breaks deployments)', () => {
    expect(CLI_OPTIONS.map((o) => [flagOf(o).split(' ')[0], o.env])).toEqual([
      ['--host', 'MIRRORSTREAM_HOST'],
      ['--port', 'MIRRORSTREAM_PORT'],
      ['--no-warm-up', 'MIRRORSTREAM_WARM_UP'],
      ['--trust-proxy', 'MIRRORSTREAM_TRUST_PROXY'],
      ['--api-key', 'MIRRORSTREAM_API_KEY'],
      ['--log-level', 'MIRRORSTREAM_LOG_LEVEL'],
      ['--heartbeat-interval-ms', 'MIRRORSTREAM_HEARTBEAT_INTERVAL_MS'],
      ['--failback-stable-ms', 'MIRRORSTREAM_FAILBACK_STABLE_MS'],
      ['--retention-max-chunks', 'MIRRORSTREAM_RETENTION_MAX_CHUNKS'],
      ['--retention-max-bytes', 'MIRRORSTREAM_RETENTION_MAX_BYTES'],
      ['--retention-max-age-ms', 'MIRRORSTREAM_RETENTION_MAX_AGE_MS'],
      ['--webrtc-engine', 'MIRRORSTREAM_WEBRTC_ENGINE'],
      ['--webrtc-bind-address', 'MIRRORSTREAM_WEBRTC_BIND_ADDRESS'],
      ['--webrtc-ice-port', 'MIRRORSTREAM_WEBRTC_ICE_PORT'],
      ['--webrtc-ice-port-count', 'MIRRORSTREAM_WEBRTC_ICE_PORT_COUNT'],
      ['--token-secret', 'MIRRORSTREAM_TOKEN_SECRET'],
      ['--nats', 'MIRRORSTREAM_NATS_URL'],
      ['--nats-replicas', 'MIRRORSTREAM_NATS_REPLICAS'],
      ['--nats-lease-ms', 'MIRRORSTREAM_NATS_LEASE_MS'],
      ['--signaling-per-address', 'MIRRORSTREAM_SIGNALING_PER_ADDRESS'],
      ['--tokens-per-address', 'MIRRORSTREAM_TOKENS_PER_ADDRESS'],
      ['--max-sessions', 'MIRRORSTREAM_MAX_SESSIONS'],
    ]);
  });

  it('every flag of the command is a key of the schema, and every exposed key is a flag of the command', () => {
    const flags = cliProgram().options.map((o) => o.long);
    expect(flags).toEqual(['--config', ...CLI_OPTIONS.map((o) => flagOf(o).split(' ')[0])]);
    const paths = CONFIG_FIELDS.map((f) => f.path);
    for (const option of CLI_OPTIONS) {
      expect(paths, option.flag).toContain(option.path);
      if (option.alsoSets) expect(paths).toContain(option.alsoSets.path);
    }
    expect(new Set(CLI_OPTIONS.map((o) => o.path)).size).toBe(CLI_OPTIONS.length);
    expect(new Set(CLI_OPTIONS.map((o) => o.env)).size).toBe(CLI_OPTIONS.length);
    expect(() => configField('limits.maxSesions')).toThrow(/not a key/);
  });

  it('the field list covers every key the schema fills in', () => {
    const leaves = (value: unknown, prefix: string): string[] =>
      typeof value === 'object' && value !== null && !Array.isArray(value) ? Object.entries(value).flatMap(([k, v]) => leaves(v, `${prefix}${k}.`)) : [prefix.slice(0, -1)];
    const paths = CONFIG_FIELDS.map((f) => f.path);
    const filled = leaves(parseConfig({}), '');
    expect(filled.length).toBeGreaterThan(60);
    for (const path of filled) expect(paths).toContain(path);
  });
});

describe('CLI options: reading flags and variables', () => {
  it('parses each value as its key type, flags over variables, an empty variable unset', () => {
    const { settings, configFile } = read(['--port', '9000', '--no-warm-up', '--trust-proxy', 'loopback, 10.0.0.0/8', '--nats', 'nats://a:4222,nats://b:4222'], {
      MIRRORSTREAM_PORT: '1',
      MIRRORSTREAM_WARM_UP: 'true',
      MIRRORSTREAM_HOST: '',
      MIRRORSTREAM_LOG_LEVEL: 'debug',
      MIRRORSTREAM_WEBRTC_ICE_PORT_COUNT: '3',
      MIRRORSTREAM_NATS_LEASE_MS: '4000',
      MIRRORSTREAM_CONFIG: '/etc/ms.json',
    });
    expect(settings).toEqual({
      port: 9000,
      warmUp: false,
      trustProxy: ['loopback', '10.0.0.0/8'],
      logLevel: 'debug',
      webrtc: { icePortCount: 3 },
      log: { kind: 'jetstream', nats: { servers: ['nats://a:4222', 'nats://b:4222'], leaseMs: 4000 } },
    });
    expect(configFile).toBe('/etc/ms.json');
    const config = parseConfig(layeredConfig(settings));
    expect([config.host, config.port, config.warmUp, config.log.kind, config.log.nats.leaseMs]).toEqual(['127.0.0.1', 9000, false, 'jetstream', 4000]);
  });

  it('reads booleans from variables, and --config over its variable', () => {
    expect(read([], { MIRRORSTREAM_WARM_UP: 'false' }).settings).toEqual({ warmUp: false });
    expect(read([], { MIRRORSTREAM_WARM_UP: 'true' }).settings).toEqual({ warmUp: true });
    expect(read([]).settings).toEqual({});
    expect(read(['--config', 'a.json'], { MIRRORSTREAM_CONFIG: 'b.json' }).configFile).toBe('a.json');
    expect(read([]).configFile).toBeUndefined();
  });

  it('a value its key refuses is MS_CONFIG_INVALID naming each variable and key, never the value', () => {
    const error = refused([], {
      MIRRORSTREAM_PORT: 'eighty',
      MIRRORSTREAM_WARM_UP: 'no',
      MIRRORSTREAM_TOKEN_SECRET: 'short-but-secret',
      MIRRORSTREAM_LOG_LEVEL: 'loud',
      MIRRORSTREAM_TRUST_PROXY: 'nginx',
      MIRRORSTREAM_NATS_REPLICAS: '2.5',
    });
    expect(error.code).toBe('MS_CONFIG_INVALID');
    const lines = error.message.split('\n');
    for (const named of ['MIRRORSTREAM_PORT (port)', 'MIRRORSTREAM_WARM_UP (warmUp)', 'MIRRORSTREAM_TOKEN_SECRET (tokens.secret)', 'MIRRORSTREAM_LOG_LEVEL (logLevel)', 'MIRRORSTREAM_TRUST_PROXY (trustProxy)', 'MIRRORSTREAM_NATS_REPLICAS (log.nats.replicas)']) {
      expect(lines.filter((l) => l.startsWith(`${named}: `)), named).toHaveLength(1);
    }
    expect(lines).toHaveLength(6);
    expect(error.message).not.toContain('short-but-secret');
  });

  it('a flag value its key refuses is MS_CONFIG_INVALID naming the flag', () => {
    for (const argv of [['--port', 'x'], ['--port', '70000'], ['--max-sessions', '0'], ['--webrtc-engine', 'libwebrtc'], ['--nats', 'http://a:1']]) {
      const error = refused(argv);
      expect(error.code, argv.join(' ')).toBe('MS_CONFIG_INVALID');
      expect(error.message, argv.join(' ')).toMatch(new RegExp(`^${argv[0]} \\(`));
    }
    // a flag wins even when it is the bad one
    expect(refused(['--port', 'x'], { MIRRORSTREAM_PORT: '80' }).message).toMatch(/^--port \(port\)/);
  });
});

describe('CLI options: --help', () => {
  const help = cliProgram().configureHelp({ helpWidth: 10_000 }).helpInformation();
  const lineOf = (flag: string): string => help.split('\n').find((l) => l.trimStart().startsWith(`${flag} `)) ?? '';

  it('lists every option with its key, variable and the schema default', () => {
    for (const option of CLI_OPTIONS) {
      const line = lineOf(flagOf(option));
      expect(line, option.flag).toContain(configField(option.path).description);
      expect(line, option.flag).toContain(`key ${option.path};`);
      expect(line, option.flag).toContain(`env ${option.env}`);
      expect(line, option.flag).toContain(`default: ${formatDefault(configField(option.path).default)})`);
    }
    expect(lineOf('--port <n>')).toContain('default: 8080)');
    expect(lineOf('--no-warm-up')).toContain('env MIRRORSTREAM_WARM_UP=true|false; default: true)');
    expect(lineOf('--trust-proxy <list>')).toContain('comma-separated');
    expect(lineOf('--log-level <choice>')).toContain('one of fatal, error, warn, info, debug, trace, silent');
    expect(lineOf('--api-key <value>')).toContain('default: unset)');
    expect(lineOf('--config <file>')).toContain('MIRRORSTREAM_CONFIG');
  });
});

describe('docs/configuration.md', () => {
  it('is what `npm run docs:config` generates from the schema (run it after changing a key)', () => {
    expect(readFileSync(CONFIG_DOCS_PATH, 'utf8')).toBe(renderConfigDocs());
  });

  it('has a row for every key, with its flag where it has one', () => {
    const doc = readFileSync(CONFIG_DOCS_PATH, 'utf8');
    // cells split on unescaped pipes: ['', key, type, default, flag / env, description, '']
    const rows = doc
      .split('\n')
      .filter((l) => l.startsWith('| `'))
      .map((l) => l.split(/(?<!\\)\|/).map((c) => c.trim()));
    expect(rows.every((cells) => cells.length === 7)).toBe(true);
    expect(rows.map((cells) => cells[1]).sort()).toEqual(CONFIG_FIELDS.map((f) => `\`${f.path}\``).sort());
    const flagged = rows.filter((cells) => cells[4] !== '').map((cells) => cells[4]!.split(' / ')[0]);
    expect(flagged.sort()).toEqual(CLI_OPTIONS.map((o) => `\`${flagOf(o)}\``).sort());
    expect(rows.find((cells) => cells[1] === '`webrtc.icePort`')?.[4]).toBe('`--webrtc-ice-port <n>` / `MIRRORSTREAM_WEBRTC_ICE_PORT`');
  });
});
