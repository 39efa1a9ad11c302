import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../receiver-sdk/src/index.js';
import { ChannelClosedError, type ChannelHandle } from '../../gateway/src/transports/webrtc/channel.js';
import { DataChannelTransport } from '../../gateway/src/transports/webrtc/transport.js';

/** A send that fails: a channel the engine closed before telling us is a close; anything else is an error too. */
function channel(label: string, fail?: Error): ChannelHandle {
  return {
    label,
    isOpen: true,
    bufferedAmount: 0,
    send: () => {
      if (fail) throw fail;
    },
    onMessage: () => undefined,
    onClose: () => undefined,
    close: () => undefined,
  };
}

function transport(fail: Error) {
  const t = new DataChannelTransport({
    engine: 'test',
    channels: { control: channel('control'), data: channel('data', fail), 'data-unreliable': channel('data-unreliable') },
    telemetry: { snapshot: () => ({ extra: {} }), close: () => undefined },
    lowWaterBytes: 1024,
    highWaterBytes: 65_536,
    clock: new ManualClock(),
  });
  const errors: Error[] = [];
  t.on('error', (e) => errors.push(e));
  return { t, errors };
}

describe('DataChannelTransport send failures', () => {
  it('a channel the engine already closed (a page gone): the transport closes as on the close callback, no error reported', async () => {
    const { t, errors } = transport(new ChannelClosedError('data'));
    expect(t.send(new Uint8Array([1]), 'data')).toBe(false);
    expect(await t.closed).toBe('data channel closed');
    expect(errors).toEqual([]);
  });

  it('any other send failure is reported and closes the transport', async () => {
    const { t, errors } = transport(new Error('engine exploded'));
    expect(t.send(new Uint8Array([1]), 'data')).toBe(false);
    expect(await t.closed).toBe('send failed');
    expect(errors.map((e) => e.message)).toEqual(['engine exploded']);
  });
});
