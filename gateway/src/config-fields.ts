import { z } from 'zod';
import { gatewayConfigSchema } from './config.js';

/**
 * Every key of the gateway config as the schema declares it (type, default, bounds,
 * description), read from `gatewayConfigSchema` itself: the CLI's flags and help and
 * docs/configuration.md are made from this list, so none of them restates the schema.
 */
export interface ConfigField {
  /** Dotted path, e.g. `webrtc.icePort`. */
  readonly path: string;
  readonly type: 'integer' | 'number' | 'boolean' | 'string' | 'enum' | 'list';
  /** The allowed values of an enum (empty for other types). */
  readonly values: readonly string[];
  /** The schema's default; undefined for a key without one (optional). */
  readonly default: unknown;
  readonly description: string;
  /** The key's own schema: checks one value given for this key alone. */
  readonly schema: z.core.$ZodType;
  /** Its JSON Schema (input side), for the bounds the docs show. */
  readonly json: z.core.JSONSchema.BaseSchema;
}

/** A nested object of the config (`heartbeat`, `log.nats`, ...) and its description. */
export interface ConfigSection {
  readonly path: string;
  readonly description: string;
}

/** The object schema inside a section's wrappers (prefault, default, optional, a transform's pipe), or undefined for a leaf. */
function objectOf(schema: z.core.$ZodType): z.ZodObject | undefined {
  if (schema instanceof z.ZodObject) return schema;
  if (schema instanceof z.ZodPrefault || schema instanceof z.ZodDefault || schema instanceof z.ZodOptional) return objectOf(schema.unwrap());
  if (schema instanceof z.ZodPipe) return objectOf(schema.in);
  return undefined;
}

function describe(schema: z.core.$ZodType, path: string): string {
  const description = z.globalRegistry.get(schema)?.description;
  // a key the docs and --help would show without a word: caught at import, so in every test
  if (!description) throw new Error(`config key ${path} has no description: add .describe() last in its chain`);
  return description;
}

function fieldOf(schema: z.core.$ZodType, path: string): ConfigField {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });
  const base = { path, values: [], default: json.default, description: describe(schema, path), schema, json };
  if (Array.isArray(json.enum)) return { ...base, type: 'enum', values: json.enum.map(String) };
  if (json.type === 'integer' || json.type === 'number' || json.type === 'boolean' || json.type === 'string') return { ...base, type: json.type };
  const items = json.items;
  if (json.type === 'array' && items !== undefined && !Array.isArray(items) && typeof items === 'object' && items.type === 'string') return { ...base, type: 'list' };
  throw new Error(`config key ${path}: no field type for JSON Schema type ${String(json.type)}`);
}

function walk(object: z.ZodObject, prefix: string, fields: ConfigField[], sections: ConfigSection[]): void {
  for (const [key, schema] of Object.entries(object.shape)) {
    const path = prefix + key;
    const inner = objectOf(schema);
    if (inner === undefined) {
      fields.push(fieldOf(schema, path));
    } else {
      sections.push({ path, description: describe(schema, path) });
      walk(inner, `${path}.`, fields, sections);
    }
  }
}

const fields: ConfigField[] = [];
const sections: ConfigSection[] = [];
walk(gatewayConfigSchema, '', fields, sections);

/** Every leaf key of the config, in schema order. */
export const CONFIG_FIELDS: readonly ConfigField[] = fields;
/** Every nested object of the config, in schema order. */
export const CONFIG_SECTIONS: readonly ConfigSection[] = sections;

/** The field at a dotted path; throws for a path that is not a leaf key of the schema. */
export function configField(path: string): ConfigField {
  const field = CONFIG_FIELDS.find((f) => f.path === path);
  if (!field) throw new Error(`${path} is not a key of the gateway config schema`);
  return field;
}
