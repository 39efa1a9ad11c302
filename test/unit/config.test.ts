import express from 'express';
import { describe, expect, it } from 'vitest';
import { ConfigError, layeredConfig, parseConfig, parseConfigFile } from '../../gateway/src/index.js';

describe('gateway config', () => {
  it('fills documented defaults and freezes the result', () => {
    const c = parseConfig({});
    expect(c.port).toBe(8080);
    expect(c.heartbeat.intervalMs).toBe(250);
    expect(c.failback).toEqual({ enabled: true, stableMs: 5_000 });
    expect(c.maxFrameBytes).toBe(1024 * 1024);
    expect(Object.isFrozen(c) && Object.isFrozen(c.retention)).toBe(true);
  });

  it('never mutates the caller object', () => {
    const input = { heartbeat: { intervalMs: 100 } };
    parseConfig(input);
    expect(input).toEqual({ heartbeat: { intervalMs: 100 } });
  });

  it('rejects unknown keys, wrong units and inconsistent thresholds with MS_CONFIG_INVALID', () => {
    for (const bad of [{ prot: 1 }, { port: 70_000 }, { heartbeat: { intervalMs: 1 } }, { heartbeat: { phiSuspect: 9, phiDead: 8 } }, { health: { probeIntervalMs: 2_000 } }, { health: { carrierProbeIntervalMs: 30 } }, { apiKey: 'short' }]) {
      expect(() => parseConfig(bad as never)).toThrowError(ConfigError);
      try {
        parseConfig(bad as never);
      } catch (e) {
        expect((e as ConfigError).code).toBe('MS_CONFIG_INVALID');
      }
    }
  });
});

describe('gateway config: trusted proxies', () => {
  it('takes addresses, subnets and proxy-addr names; refuses anything else with MS_CONFIG_INVALID', () => {
    expect(parseConfig({}).trustProxy).toEqual([]);
    const good = ['loopback', 'uniquelocal', '10.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8'];
    expect(parseConfig({ trustProxy: good }).trustProxy).toEqual(good);
    // what the schema takes, Express takes too (it would throw at start otherwise)
    for (const v of [...good, '192.168.0.0/1', '10.0.0.1/32', '::ffff:10.0.0.1', '2001:db8::/128']) {
      expect(() => express().set('trust proxy', parseConfig({ trustProxy: [v] }).trustProxy), v).not.toThrow();
    }
    for (const bad of ['nginx', '0.0.0.0/0', '::/0', '10.0.0.1/00', '10.0.0.0/33', '::/129', '10.0.0.1/8/1', '10.0.0.0/', '10.0.0.0/x', '', '*']) {
      expect(() => parseConfig({ trustProxy: [bad] }), bad).toThrowError(ConfigError);
    }
  });
});

describe('gateway config: frame and chunk sizes', () => {
  it('a chunk must fit in one frame of the advertised size (receivers refuse larger frames)', () => {
    expect(() => parseConfig({ maxChunkBytes: 1024 * 1024 })).toThrowError(/maxChunkBytes/);
    expect(parseConfig({ maxFrameBytes: 2 * 1024 * 1024, maxChunkBytes: 1024 * 1024 }).maxChunkBytes).toBe(1024 * 1024);
    expect(parseConfig({}).maxChunkBytes).toBe(512 * 1024);
  });
});

describe('gateway config: layers (a --config file, environment variables, flags)', () => {
  it('objects merge key by key, a higher layer wins, an undefined leaf keeps the lower value, arrays are replaced', () => {
    const file = { port: 1000, limits: { maxSessions: 7, signalingPerAddress: 3 }, webrtc: { iceServers: ['stun:a:1', 'stun:b:2'] } };
    const env = { limits: { maxSessions: 9, signalingPerAddress: undefined } };
    const flags = { port: 2000, webrtc: { iceServers: ['stun:c:3'] } };
    const config = parseConfig(layeredConfig(file, env, flags));
    expect(config.port).toBe(2000);
    expect(config.limits.maxSessions).toBe(9);
    expect(config.limits.signalingPerAddress).toBe(3);
    expect(config.webrtc.iceServers).toEqual(['stun:c:3']);
    // the layers themselves are left alone
    expect(file.limits.maxSessions).toBe(7);
  });

  it('a file is checked by the same schema: unknown keys (also "__proto__"), bad JSON, a non-object are MS_CONFIG_INVALID', () => {
    expect(() => parseConfig(layeredConfig(parseConfigFile('a.json', '{"limits":{"maxSesions":3}}')))).toThrow(/maxSesions/);
    const polluted = layeredConfig(parseConfigFile('b.json', '{"__proto__":{"port":5}}'));
    expect(({} as { port?: number }).port).toBeUndefined();
    expect(() => parseConfig(polluted)).toThrow(ConfigError);
    for (const text of ['{"port":', '[1,2]', '"x"', 'null']) {
      let error: unknown;
      try {
        parseConfigFile('c.json', text);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).code).toBe('MS_CONFIG_INVALID');
      expect((error as ConfigError).message).toContain('c.json');
    }
  });
});

describe('gateway config: deploy/config.example.json', () => {
  it('is a valid --config file', async () => {
    const { readFileSync } = await import('node:fs');
    const path = new URL('../../deploy/config.example.json', import.meta.url);
    const config = parseConfig(layeredConfig(parseConfigFile(path.pathname, readFileSync(path, 'utf8'))));
    expect(config.log.kind).toBe('jetstream');
    expect(config.webrtc.icePort).toBe(50_000);
  });
});
