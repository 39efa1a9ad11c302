import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { pino } from 'pino';
import { MirrorstreamError } from '@mirrorstream/receiver/protocol';
import { ConfigError, layeredConfig, parseConfig, parseConfigFile } from '../config.js';
import { Gateway } from '../gateway.js';
import { serve } from '../http/server.js';
import { webrtcSelfTest } from '../transports/webrtc/index.js';
import { warmUp } from '../warm-up.js';
import { EXIT } from './client.js';
import { cliSettings } from './gateway-options.js';

/**
 * `mirrorstream` with no command: run a gateway. The flags and MIRRORSTREAM_* variables are
 * CLI_OPTIONS (gateway-options.ts), typed, described and defaulted by the config schema.
 * Precedence, highest first: flags, environment variables, the `--config` JSON file (any key
 * of the schema, nested as in docs/configuration.md), defaults. Runs until SIGINT/SIGTERM
 * (drains, exit 0); a configuration the schema refuses, or a start that fails for good, exits 2.
 */
export async function runGateway(program: Command): Promise<void> {
  try {
    const { configFile, settings } = cliSettings(program, process.env);
    const config = parseConfig(layeredConfig(readConfigFile(configFile), settings));
    const logger = pino({ level: config.logLevel });
    const missing = await webrtcSelfTest(config.webrtc);
    if (missing.length > 0) {
      logger.error({ missing }, `werift self-test FAILED: the installed werift lacks internals mirrorstream reads (${missing.join(', ')}); telemetry and send pacing will be wrong — use --webrtc-engine node-datachannel or werift@0.24.4`);
    } else if (config.webrtc.engine === 'werift') {
      logger.info('werift self-test passed: SCTP srtt/rto/cwnd/flightSize, queues and ICE stunServer are where expected');
    }
    logger.info({ engine: config.webrtc.engine, bindAddress: config.webrtc.bindAddress ?? 'all interfaces', icePorts: config.webrtc.icePort ? `${config.webrtc.icePort}-${config.webrtc.icePort + config.webrtc.icePortCount - 1}` : 'one per session' }, 'WebRTC engine');
    const gateway = new Gateway(config, { logger });
    // with JetStream: connect and bring back the stored streams before taking requests
    for (let attempt = 1; ; attempt++) {
      try {
        await gateway.start();
        break;
      } catch (error) {
        if (!(error instanceof MirrorstreamError && error.retryable)) throw error;
        logger.warn({ err: error, attempt }, 'the stream log is not ready yet; retrying');
        await new Promise((r) => setTimeout(r, Math.min(5_000, 250 * attempt)));
      }
    }
    const apiKey = config.apiKey ?? randomBytes(24).toString('base64url');
    const server = await serve(gateway, { apiKey });
    if (config.webtransport.enabled) {
      // started now so the backend and the dev certificate hash show up at once
      await gateway.startWebTransport().catch((error: unknown) => logger.error({ err: error }, 'WebTransport did not start'));
    }
    let stopping = false;
    const stop = async (signal: string): Promise<void> => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down');
      await gateway.close();
      await server.close();
      process.exit(0);
    };
    // (a SIGTERM during the warm-up drains like any other)
    process.on('SIGINT', () => void stop('SIGINT'));
    process.on('SIGTERM', () => void stop('SIGTERM'));
    if (config.warmUp) {
      // /readyz says `starting` meanwhile; a gateway on every interface is dialed on loopback
      const warming = warmUp(gateway, server.url.replace('://0.0.0.0:', '://127.0.0.1:').replace('://[::]:', '://[::1]:'), logger.child({ module: 'warm-up' }));
      gateway.notReadyUntil(warming);
      await warming;
    }
    if (!stopping) logger.info({ url: server.url }, `mirrorstream listening on ${server.url}`);
    if (!config.apiKey) {
      // printed on stdout on purpose: the operator needs it to call the API
      console.log(`MIRRORSTREAM_API_KEY=${apiKey}  (generated; set MIRRORSTREAM_API_KEY to choose one)`);
    }
  } catch (error) {
    if (error instanceof MirrorstreamError) {
      console.error(`mirrorstream: ${error.code}: ${error.message}`);
      process.exit(EXIT.usage);
    }
    throw error;
  }
}

/** The `--config` file's settings (none without a file); MS_CONFIG_INVALID when it cannot be read or is not a JSON object. */
function readConfigFile(path: string | undefined): unknown {
  if (path === undefined) return {};
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`config file ${path} cannot be read: ${error instanceof Error ? error.message : String(error)}`);
  }
  return parseConfigFile(path, text);
}
