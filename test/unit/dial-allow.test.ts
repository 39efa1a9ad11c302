import { describe, expect, it } from 'vitest';
import { DialAllowList } from '../../gateway/src/dial-out/allow.js';
import { normalizePin } from '../../gateway/src/dial-out/offer-client.js';
import { parseConfig } from '../../gateway/src/config.js';
import { specFromInput, streamSpecInputSchema, addEndpointSchema } from '../../gateway/src/streams/spec.js';

const refusal = (p: Promise<void>): Promise<unknown> => p.then(() => 'allowed', (e: { code?: string }) => e.code);

describe('dialOut.allow', () => {
  it('the default allows loopback only: 127.0.0.0/8, ::1 and localhost (by name)', async () => {
    const allow = new DialAllowList(parseConfig().dialOut.allow);
    expect(await refusal(allow.check(new URL('http://127.0.0.1:9/')))).toBe('allowed');
    expect(await refusal(allow.check(new URL('http://127.3.2.1:9/')))).toBe('allowed');
    expect(await refusal(allow.check(new URL('http://[::1]:9/')))).toBe('allowed');
    expect(await refusal(allow.check(new URL('https://localhost:9/')))).toBe('allowed');
    expect(await refusal(allow.check(new URL('http://10.0.0.1/')))).toBe('MS_DIAL_REFUSED');
    expect(await refusal(allow.check(new URL('http://[fe80::1]/')))).toBe('MS_DIAL_REFUSED');
    expect(await refusal(allow.check(new URL('http://169.254.169.254/latest/meta-data')))).toBe('MS_DIAL_REFUSED');
  });

  it('names, *. suffixes and subnets; a name not listed passes only when it resolves into a listed subnet', async () => {
    const allow = new DialAllowList(['collector-1.example', '*.dc.example', '10.0.0.0/8', '127.0.0.1']);
    expect(allow.nameListed('COLLECTOR-1.example')).toBe(true);
    expect(allow.nameListed('a.dc.example')).toBe(true);
    expect(allow.nameListed('dc.example')).toBe(false);
    expect(allow.nameListed('evil-dc.example')).toBe(false);
    expect(allow.addressAllowed('10.200.3.4')).toBe(true);
    expect(allow.addressAllowed('11.0.0.1')).toBe(false);
    expect(allow.addressAllowed('not-an-ip')).toBe(false);
    // localhost is not listed by name here: it resolves to 127.0.0.1 (allowed) and, where the host has it, ::1 (not)
    const onlyV4 = new DialAllowList(['127.0.0.1', '::1']);
    expect(await refusal(onlyV4.check(new URL('http://localhost:9/')))).toBe('allowed');
    expect(await refusal(new DialAllowList(['10.0.0.0/8']).check(new URL('http://localhost:9/')))).toBe('MS_DIAL_REFUSED');
    expect(await refusal(new DialAllowList([]).check(new URL('http://no-such-host.invalid/')))).toBe('MS_DIAL_REFUSED');
  });

  it('the config refuses what is neither a name nor an address or subnet', () => {
    for (const bad of ['http://x', '10.0.0.0/33', 'a b', '1.2.3.4/8/9', '*.', '::1/129']) {
      expect(() => parseConfig({ dialOut: { allow: [bad] } }), bad).toThrow(/dialOut/);
    }
    expect(parseConfig({ dialOut: { allow: ['::1/128', '*.example.com', '192.168.0.0/16'] } }).dialOut.allow).toHaveLength(3);
  });

  it('pins are compared in the form Node prints (upper-case pairs with colons)', () => {
    expect(normalizePin('ab'.repeat(32))).toBe(Array(32).fill('AB').join(':'));
    expect(normalizePin(Array(32).fill('0f').join(':'))).toBe(Array(32).fill('0F').join(':'));
  });
});

describe('endpoint_list entries of both kinds', () => {
  const token = 'listener-token-0123456789';
  const parse = (endpoint_list: unknown[]) => streamSpecInputSchema.safeParse({ stream_id: 's', endpoint_list });

  it('an id dials in, an object listens; stored as ids plus the listeners beside', () => {
    const parsed = parse(['web', { endpoint_id: 'dc1', url: 'https://collector-1.example:9443/in', token }]);
    expect(parsed.success).toBe(true);
    const spec = specFromInput(parsed.data!);
    expect(spec.endpoint_list).toEqual(['web', 'dc1']);
    expect(spec.listeners).toEqual({ dc1: { url: 'https://collector-1.example:9443/in', token } });
    expect(specFromInput(parse(['a', 'b']).data!).listeners).toBeUndefined();
  });

  it.each([
    ['another scheme', { endpoint_id: 'x', url: 'ftp://127.0.0.1/', token }, /scheme ftp: is not http or https/],
    ['credentials in the URL', { endpoint_id: 'x', url: 'http://user:pw@127.0.0.1/', token }, /no credentials/],
    ['a fragment', { endpoint_id: 'x', url: 'http://127.0.0.1/#a', token }, /fragment/],
    ['not a URL', { endpoint_id: 'x', url: 'collector-1:9443', token }, /scheme|not a URL/],
    ['a URL longer than 2048', { endpoint_id: 'x', url: `http://127.0.0.1/${'a'.repeat(2048)}`, token }, /2048/],
    ['a short token', { endpoint_id: 'x', url: 'http://127.0.0.1/', token: 'short' }, /16/],
    ['a token with spaces', { endpoint_id: 'x', url: 'http://127.0.0.1/', token: 'listener token 0123456789' }, /visible ASCII/],
    ['an unknown key', { endpoint_id: 'x', url: 'http://127.0.0.1/', token, user: 'a' }, /user/],
    ['a duplicate id across kinds', 'x', /duplicates/],
  ])('refuses %s', (_what, entry, message) => {
    const list = typeof entry === 'string' ? ['x', { endpoint_id: 'x', url: 'http://127.0.0.1/', token }] : [entry];
    const parsed = parse(list);
    expect(parsed.success).toBe(false);
    expect(JSON.stringify(parsed.error?.issues)).toMatch(message);
  });

  it('adding an endpoint takes url and token together or neither', () => {
    expect(addEndpointSchema.safeParse({ endpoint_id: 'x', url: 'http://127.0.0.1/' }).success).toBe(false);
    expect(addEndpointSchema.safeParse({ endpoint_id: 'x', token }).success).toBe(false);
    expect(addEndpointSchema.safeParse({ endpoint_id: 'x', url: 'http://127.0.0.1/', token }).success).toBe(true);
    expect(addEndpointSchema.safeParse({ endpoint_id: 'x' }).success).toBe(true);
  });
});
