/**
 * SDP candidate rewriting, to put relays between two WebRTC peers. Both peers' host
 * candidates must be rewritten: if one side still learns the other's real address, ICE
 * finds the direct pair and the relay is bypassed (see README).
 */

export interface CandidateAddress {
  host: string;
  port: number;
  /** host, srflx, prflx or relay. */
  type: string;
  /** udp or tcp, lower-cased. */
  protocol: string;
  component: number;
}

export type CandidateMap = (host: string, port: number) => { host: string; port: number } | null;

const CANDIDATE = /^(a=)?candidate:/;

function parse(line: string): { fields: string[]; address: CandidateAddress } | null {
  if (!CANDIDATE.test(line)) return null;
  const fields = line.split(' ');
  // foundation component transport priority address port "typ" type ...
  const [, component, protocol, , host, port, typ, type] = fields;
  if (host === undefined || port === undefined || typ !== 'typ' || type === undefined || !/^\d+$/.test(port)) return null;
  return {
    fields,
    address: { host, port: Number(port), type, protocol: (protocol ?? '').toLowerCase(), component: Number(component) },
  };
}

/**
 * Rewrite one candidate line (`a=candidate:...` or a trickled `candidate:...`): field 5
 * (address) and 6 (port) come from `map`, everything else is kept. Returns null if `map`
 * does, and the line unchanged if it is not a candidate.
 */
export function rewriteCandidateLine(line: string, map: CandidateMap): string | null {
  const parsed = parse(line);
  if (!parsed) return line;
  const to = map(parsed.address.host, parsed.address.port);
  if (to === null) return null;
  const fields = [...parsed.fields];
  fields[4] = to.host;
  fields[5] = String(to.port);
  return fields.join(' ');
}

/**
 * Rewrite every `a=candidate` line of an SDP with `map`, dropping those it maps to null.
 * A `c=IN IP4|IP6 <addr>` line is rewritten only if `<addr>` was the host of a rewritten
 * candidate (with the `m=` port when that pair matched too), otherwise left alone.
 * Line endings (\r\n or \n) are kept.
 */
export function rewriteCandidates(sdp: string, map: CandidateMap): string {
  const lines = sdp.split('\n');
  const byHost = new Map<string, string>();
  const byHostPort = new Map<string, { host: string; port: number }>();
  const out: string[] = [];
  for (const raw of lines) {
    const cr = raw.endsWith('\r');
    const line = cr ? raw.slice(0, -1) : raw;
    const parsed = parse(line);
    if (!parsed) {
      out.push(raw);
      continue;
    }
    const { host, port } = parsed.address;
    const to = map(host, port);
    if (to === null) continue;
    if (!byHost.has(host)) byHost.set(host, to.host);
    byHostPort.set(`${host} ${port}`, to);
    const fields = [...parsed.fields];
    fields[4] = to.host;
    fields[5] = String(to.port);
    out.push(fields.join(' ') + (cr ? '\r' : ''));
  }
  // second pass: c=/m= usually precede the candidates of their section
  let mIndex = -1;
  for (let i = 0; i < out.length; i++) {
    const raw = out[i] as string;
    const cr = raw.endsWith('\r');
    const line = cr ? raw.slice(0, -1) : raw;
    if (line.startsWith('m=')) mIndex = i;
    const c = /^c=IN (IP4|IP6) (\S+)$/.exec(line);
    const family = c?.[1];
    const addr = c?.[2];
    if (family === undefined || addr === undefined) continue;
    const newHost = byHost.get(addr);
    if (newHost === undefined) continue;
    out[i] = `c=IN ${family} ${newHost}` + (cr ? '\r' : '');
    if (mIndex >= 0) {
      const m = out[mIndex] as string;
      const mm = /^(m=\S+ )(\d+)( .*)$/s.exec(m);
      const to = mm ? byHostPort.get(`${addr} ${mm[2]}`) : undefined;
      if (mm && to) out[mIndex] = `${mm[1]}${to.port}${mm[3]}`;
    }
  }
  return out.join('\n');
}

/** Addresses of every candidate in an SDP (or a single candidate line), in order. */
export function candidateAddresses(sdp: string): CandidateAddress[] {
  const found: CandidateAddress[] = [];
  for (const raw of sdp.split('\n')) {
    const parsed = parse(raw.endsWith('\r') ? raw.slice(0, -1) : raw);
    if (parsed) found.push(parsed.address);
  }
  return found;
}
