import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../gateway/src/index.js';

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

describe('gateway config: frame and chunk sizes', () => {
  it('a chunk must fit in one frame of the advertised size (receivers refuse larger frames)', () => {
    expect(() => parseConfig({ maxChunkBytes: 1024 * 1024 })).toThrowError(/maxChunkBytes/);
    expect(parseConfig({ maxFrameBytes: 2 * 1024 * 1024, maxChunkBytes: 1024 * 1024 }).maxChunkBytes).toBe(1024 * 1024);
    expect(parseConfig({}).maxChunkBytes).toBe(512 * 1024);
  });
});
