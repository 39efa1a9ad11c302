/**
 * Names in NATS for mirrorstream ids. Ids are `[A-Za-z0-9._:-]`; JetStream stream names
 * may not hold `.`, KV keys may not hold `:`, so every character outside `[A-Za-z0-9_-]`
 * is written `=XX` (hex; `=` never occurs in an id, so this is reversible).
 */
export function escapeId(id: string): string {
  return id.replace(/[^A-Za-z0-9_-]/g, (c) => `=${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

export function unescapeId(name: string): string {
  return name.replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** The NATS names of one deployment (its `prefix`). */
export function natsNames(prefix: string) {
  return {
    /** KV bucket of stream specs: key = escaped stream id. */
    streamsBucket: `${prefix}_streams`,
    /** KV bucket of cursors: key = `<escaped stream>.<escaped endpoint>`. */
    cursorsBucket: `${prefix}_cursors`,
    /** The JetStream stream holding one mirrorstream stream's chunks. */
    logStream: (streamId: string) => `${prefix}_log_${escapeId(streamId)}`,
    logSubject: (streamId: string) => `${prefix}.log.${escapeId(streamId)}`,
    cursorKey: (streamId: string, endpointId: string) => `${escapeId(streamId)}.${escapeId(endpointId)}`,
    /** The fenced control log of one stream: lease claims and role decisions. */
    controlStream: (streamId: string) => `${prefix}_ctl_${escapeId(streamId)}`,
    controlSubject: (streamId: string) => `${prefix}.ctl.${escapeId(streamId)}`,
    /** KV bucket of endpoint health shared between instances: key = `<escaped endpoint>.<escaped instance>`. */
    endpointsBucket: `${prefix}_endpoints`,
  };
}

export type NatsNames = ReturnType<typeof natsNames>;
