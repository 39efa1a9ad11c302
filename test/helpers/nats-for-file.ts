import { afterAll, beforeAll } from 'vitest';
import { startNats, type NatsServer } from './nats.js';

/** One nats-server for the tests of a file: started before them, stopped after; call the getter inside a test. */
export function natsForFile(): () => NatsServer {
  let server: NatsServer | undefined;
  beforeAll(async () => {
    server = await startNats();
  });
  afterAll(async () => {
    await server?.close();
  });
  return () => {
    if (!server) throw new Error('nats-server is not started yet');
    return server;
  };
}
