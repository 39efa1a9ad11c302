import { describe, expect, it } from 'vitest';
import { MemoryStreamLog } from '../../gateway/src/storage/memory-log.js';
import { decodeFrame, FrameType } from '../../receiver-sdk/src/index.js';

const retention = { maxChunks: 1_000, maxBytes: 1_000_000, maxAgeMs: 60_000 };
const bytes = (n: number): Uint8Array => new Uint8Array(n);

describe('StreamLog retention ring', () => {
  it('assigns contiguous seqs from 1 and evicts by count', () => {
    const log = new MemoryStreamLog('s', { ...retention, maxChunks: 10 });
    for (let i = 0; i < 25; i++) expect(log.append(bytes(1), 0).seq).toBe(i + 1);
    expect([log.firstSeq, log.lastSeq, log.size, log.evicted]).toEqual([16, 25, 10, 15]);
    expect(log.get(15)).toBeUndefined();
    expect(log.get(16)?.seq).toBe(16);
    expect(log.get(26)).toBeUndefined();
  });

  it('evicts by bytes but always keeps the newest chunk', () => {
    const log = new MemoryStreamLog('s', { ...retention, maxBytes: 2_048 });
    log.append(bytes(1_000), 0);
    log.append(bytes(1_000), 0);
    expect(log.size).toBe(2);
    log.append(bytes(1_000), 0);
    expect([log.firstSeq, log.bytes]).toEqual([2, 2_000]);
    log.append(bytes(5_000), 0);
    expect([log.firstSeq, log.lastSeq, log.bytes]).toEqual([4, 4, 5_000]);
  });

  it('evicts by age on append and on the sweep', () => {
    const log = new MemoryStreamLog('s', { ...retention, maxAgeMs: 1_000 });
    log.append(bytes(1), 0);
    log.append(bytes(1), 500);
    log.append(bytes(1), 1_200);
    expect(log.firstSeq).toBe(2);
    log.evictExpired(1_600);
    expect(log.firstSeq).toBe(3);
  });

  it('keeps working across many wrap-arounds of the ring', () => {
    const log = new MemoryStreamLog('s', { ...retention, maxChunks: 100 });
    for (let i = 1; i <= 10_000; i++) log.append(new Uint8Array([i % 256]), 0);
    for (let seq = 9_901; seq <= 10_000; seq++) expect(log.get(seq)?.payload[0]).toBe(seq % 256);
  });

  it('encodes the DATA frame once and shares it', () => {
    const log = new MemoryStreamLog('s', retention);
    log.append(new Uint8Array([1, 2, 3]), 42, 'k', 2);
    const frame = log.frame(1);
    expect(log.frame(1)).toBe(frame);
    const decoded = frame ? decodeFrame(frame) : undefined;
    expect(decoded?.ok && decoded.frame).toMatchObject({ type: FrameType.DATA, streamId: 's', seq: 1, timestamp: 42, key: 'k', layer: 2 });
  });
});
