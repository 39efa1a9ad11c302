import { Command, Option } from 'commander';
import { z } from 'zod';
import { ConfigError } from '../config.js';
import { configField, type ConfigField } from '../config-fields.js';

/**
 * The config keys the `mirrorstream` CLI exposes as a flag and an environment variable:
 * the one place they are named. Type, default, help text and validation come from the
 * schema (config-fields.ts), never from here. Names are part of the CLI's contract:
 * never rename one.
 */
export interface CliOption {
  /** Dotted path of the key in gatewayConfigSchema. */
  readonly path: string;
  /** The flag without dashes; a boolean that defaults to true is given as `--no-<flag>`. */
  readonly flag: string;
  readonly env: string;
  /** Another key the option sets with it (`--nats` selects the JetStream log). */
  readonly alsoSets?: { readonly path: string; readonly value: string };
}

export const CLI_OPTIONS: readonly CliOption[] = [
  { path: 'host', flag: 'host', env: 'MIRRORSTREAM_HOST' },
  { path: 'port', flag: 'port', env: 'MIRRORSTREAM_PORT' },
  { path: 'warmUp', flag: 'warm-up', env: 'MIRRORSTREAM_WARM_UP' },
  { path: 'trustProxy', flag: 'trust-proxy', env: 'MIRRORSTREAM_TRUST_PROXY' },
  { path: 'apiKey', flag: 'api-key', env: 'MIRRORSTREAM_API_KEY' },
  { path: 'logLevel', flag: 'log-level', env: 'MIRRORSTREAM_LOG_LEVEL' },
  { path: 'heartbeat.intervalMs', flag: 'heartbeat-interval-ms', env: 'MIRRORSTREAM_HEARTBEAT_INTERVAL_MS' },
  { path: 'failback.stableMs', flag: 'failback-stable-ms', env: 'MIRRORSTREAM_FAILBACK_STABLE_MS' },
  { path: 'retention.maxChunks', flag: 'retention-max-chunks', env: 'MIRRORSTREAM_RETENTION_MAX_CHUNKS' },
  { path: 'retention.maxBytes', flag: 'retention-max-bytes', env: 'MIRRORSTREAM_RETENTION_MAX_BYTES' },
  { path: 'retention.maxAgeMs', flag: 'retention-max-age-ms', env: 'MIRRORSTREAM_RETENTION_MAX_AGE_MS' },
  { path: 'webrtc.engine', flag: 'webrtc-engine', env: 'MIRRORSTREAM_WEBRTC_ENGINE' },
  { path: 'webrtc.bindAddress', flag: 'webrtc-bind-address', env: 'MIRRORSTREAM_WEBRTC_BIND_ADDRESS' },
  { path: 'webrtc.icePort', flag: 'webrtc-ice-port', env: 'MIRRORSTREAM_WEBRTC_ICE_PORT' },
  { path: 'webrtc.icePortCount', flag: 'webrtc-ice-port-count', env: 'MIRRORSTREAM_WEBRTC_ICE_PORT_COUNT' },
  { path: 'tokens.secret', flag: 'token-secret', env: 'MIRRORSTREAM_TOKEN_SECRET' },
  { path: 'log.nats.servers', flag: 'nats', env: 'MIRRORSTREAM_NATS_URL', alsoSets: { path: 'log.kind', value: 'jetstream' } },
  { path: 'log.nats.replicas', flag: 'nats-replicas', env: 'MIRRORSTREAM_NATS_REPLICAS' },
  { path: 'log.nats.leaseMs', flag: 'nats-lease-ms', env: 'MIRRORSTREAM_NATS_LEASE_MS' },
  { path: 'limits.signalingPerAddress', flag: 'signaling-per-address', env: 'MIRRORSTREAM_SIGNALING_PER_ADDRESS' },
  { path: 'limits.tokensPerAddress', flag: 'tokens-per-address', env: 'MIRRORSTREAM_TOKENS_PER_ADDRESS' },
  { path: 'limits.maxSessions', flag: 'max-sessions', env: 'MIRRORSTREAM_MAX_SESSIONS' },
];

/** `--config <file>` is no key of the schema: it names the JSON file the other settings may come from. */
export const CONFIG_FILE_ENV = 'MIRRORSTREAM_CONFIG';

/** The flag as typed on the command line, with its argument placeholder. */
export function flagOf(option: CliOption): string {
  const field = configField(option.path);
  if (field.type === 'boolean') return field.default === true ? `--no-${option.flag}` : `--${option.flag}`;
  return `--${option.flag} <${placeholderOf(field)}>`;
}

function placeholderOf(field: ConfigField): string {
  switch (field.type) {
    case 'list':
      return 'list';
    case 'enum':
      return 'choice';
    case 'string':
      return 'value';
    default:
      return field.path.endsWith('Ms') ? 'ms' : 'n';
  }
}

/** A default as the help and the docs show it. */
export function formatDefault(value: unknown): string {
  if (value === undefined) return 'unset';
  if (Array.isArray(value)) return value.length === 0 ? 'none' : value.join(',');
  return String(value);
}

/** The help line of an option: the schema's description, then its key, values, what else it sets, env and default. */
export function helpOf(option: CliOption): string {
  const field = configField(option.path);
  const extra = [
    `key ${option.path}`,
    field.type === 'enum' ? `one of ${field.values.join(', ')}` : undefined,
    field.type === 'list' ? 'comma-separated' : undefined,
    option.alsoSets ? `sets ${option.alsoSets.path} ${option.alsoSets.value}` : undefined,
    `env ${option.env}${field.type === 'boolean' ? '=true|false' : ''}`,
    `default: ${formatDefault(field.default)}`,
  ].filter((s) => s !== undefined);
  return `${field.description} (${extra.join('; ')})`;
}

/** The `mirrorstream` command with every option of CLI_OPTIONS; parse it, then read it with cliSettings. */
export function cliProgram(): Command {
  const program = new Command()
    .name('mirrorstream')
    .description('Sequenced stream gateway with prioritized receivers and health-based failover')
    .addOption(new Option('--config <file>', `JSON configuration file, checked by the same schema; environment variables and flags override it (env ${CONFIG_FILE_ENV})`));
  for (const option of CLI_OPTIONS) program.addOption(new Option(flagOf(option), helpOf(option)));
  return program;
}

/** What the command line and the environment say: the config file to read and the settings over it. */
export interface CliSettings {
  readonly configFile: string | undefined;
  /** A config layer (nested as the schema) of every option given by a flag or, failing that, a variable. */
  readonly settings: Readonly<Record<string, unknown>>;
}

/**
 * Flags over MIRRORSTREAM_* variables (an empty variable counts as unset), each value parsed by
 * its key's type and checked by its key's schema. Throws one ConfigError (MS_CONFIG_INVALID)
 * naming every flag or variable whose value its key refuses.
 */
export function cliSettings(program: Command, env: Readonly<Record<string, string | undefined>>): CliSettings {
  const given = program.opts<Record<string, unknown>>();
  const settings: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const option of CLI_OPTIONS) {
    const name = new Option(flagOf(option)).attributeName();
    const fromFlag = program.getOptionValueSource(name) === 'cli';
    const raw = fromFlag ? given[name] : env[option.env] || undefined;
    if (raw === undefined) continue;
    const value = parseValue(configField(option.path), raw);
    const checked = z.safeParse(configField(option.path).schema, value);
    if (!checked.success) {
      // the key's rule, never the value: it may be a secret
      problems.push(`${fromFlag ? `--${option.flag}` : option.env} (${option.path}): ${checked.error.issues.map((i) => i.message).join('; ')}`);
      continue;
    }
    setPath(settings, option.path, value);
    if (option.alsoSets) setPath(settings, option.alsoSets.path, option.alsoSets.value);
  }
  if (problems.length > 0) throw new ConfigError(problems.join('\n'));
  const configFile = program.getOptionValueSource('config') === 'cli' ? String(given.config) : env[CONFIG_FILE_ENV] || undefined;
  return { configFile, settings };
}

/** A flag's or variable's text as its key's type where it reads as one; anything else goes to the key's schema as it is, which says what it expected. */
function parseValue(field: ConfigField, raw: unknown): unknown {
  // commander hands a boolean flag (--no-warm-up) over as a boolean
  if (typeof raw !== 'string') return raw;
  if (field.type === 'list') return raw.split(',').map((v) => v.trim()).filter((v) => v.length > 0);
  if (field.type === 'boolean') return raw === 'true' ? true : raw === 'false' ? false : raw;
  if (field.type === 'integer' || field.type === 'number') return raw.trim() !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
  return raw;
}

/** Sets `a.b.c` in a nested settings object, creating the objects on the way. */
function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  const last = keys.pop() ?? path;
  let node = target;
  for (const key of keys) {
    const next = node[key];
    const child: Record<string, unknown> = typeof next === 'object' && next !== null ? (next as Record<string, unknown>) : {};
    node[key] = child;
    node = child;
  }
  node[last] = value;
}
