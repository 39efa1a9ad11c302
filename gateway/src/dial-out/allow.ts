import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions, type LookupOneOptions } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { MirrorstreamError } from '@mirrorstream/receiver/protocol';

/**
 * Which hosts the gateway may dial (`dialOut.allow`): host names (`*.example.com` matches its
 * subdomains), IP addresses and subnets. A name that is not listed is allowed when every
 * address it resolves to is in a listed subnet; the same check runs inside each dial's DNS
 * lookup, so a name that resolves elsewhere later (DNS rebinding) is refused then too.
 */
export class DialAllowList {
  readonly #nets = new BlockList();
  readonly #names = new Set<string>();
  readonly #suffixes: string[] = [];

  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const [ip, bits] = entry.split('/');
      const family = isIP(ip ?? '');
      if (family !== 0) {
        const type = family === 4 ? 'ipv4' : 'ipv6';
        if (bits === undefined) this.#nets.addAddress(ip!, type);
        else this.#nets.addSubnet(ip!, Number(bits), type);
      } else if (entry.startsWith('*.')) this.#suffixes.push(entry.slice(1).toLowerCase());
      else this.#names.add(entry.toLowerCase());
    }
  }

  /** The URL's host is listed by name (then its addresses are not checked). */
  nameListed(host: string): boolean {
    const h = host.toLowerCase();
    return this.#names.has(h) || this.#suffixes.some((s) => h.endsWith(s));
  }

  addressAllowed(address: string): boolean {
    const family = isIP(address);
    if (family === 0) return false;
    return this.#nets.check(address, family === 4 ? 'ipv4' : 'ipv6');
  }

  /** MS_DIAL_REFUSED unless `url`'s host may be dialed (a name not listed is resolved and its addresses checked). */
  async check(url: URL): Promise<void> {
    const host = hostOf(url);
    if (this.nameListed(host)) return;
    if (isIP(host) !== 0) {
      if (this.addressAllowed(host)) return;
      throw refused(host, 'the address is not in dialOut.allow');
    }
    const addresses = await new Promise<LookupAddress[]>((resolve, reject) => dnsLookup(host, { all: true }, (err, all) => (err ? reject(err) : resolve(all)))).catch((error: unknown) => {
      throw new MirrorstreamError('MS_DIAL_REFUSED', `${host} does not resolve (${(error as NodeJS.ErrnoException).code ?? String(error)}) and is not listed by name in dialOut.allow`);
    });
    const outside = addresses.find((a) => !this.addressAllowed(a.address));
    if (outside) throw refused(host, `it resolves to ${outside.address}, which is not in dialOut.allow`);
  }

  /** A DNS lookup for http(s).request that refuses addresses outside the list (names listed by name pass). */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    const listed = this.nameListed(hostname);
    dnsLookup(hostname, { ...(options as LookupOneOptions), all: true } as LookupAllOptions, (err, all) => {
      if (err) return callback(err, '', 0);
      const outside = listed ? undefined : all.find((a) => !this.addressAllowed(a.address));
      if (outside) return callback(refused(hostname, `it resolves to ${outside.address}, which is not in dialOut.allow`) as NodeJS.ErrnoException, '', 0);
      if ((options as LookupAllOptions).all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, all);
      const first = all[0];
      if (!first) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '', 0);
      callback(null, first.address, first.family);
    });
  };
}

/** The host of a URL without IPv6 brackets. */
export function hostOf(url: URL): string {
  return url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
}

function refused(host: string, why: string): MirrorstreamError {
  return new MirrorstreamError('MS_DIAL_REFUSED', `may not dial ${host}: ${why}`);
}
