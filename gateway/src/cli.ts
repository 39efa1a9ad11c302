#!/usr/bin/env node
import type { Command } from 'commander';
import { endpointsCommand, streamsCommand, tokenCommand } from './cli/admin.js';
import { EXIT } from './cli/client.js';
import { cliProgram } from './cli/gateway-options.js';
import { publishCommand } from './cli/publish.js';
import { receiveCommand } from './cli/receive.js';

/**
 * `mirrorstream`: alone (with the gateway's flags) it runs a gateway; `publish`, `receive`,
 * `streams`, `endpoints` and `token` are clients of one (docs/cli.md). The gateway's flags go
 * before any command, so a command's own `--api-key` is its own.
 */
const program = cliProgram()
  .enablePositionalOptions()
  // loaded only to run a gateway: a client command starts without the gateway's modules
  .action(async () => (await import('./cli/serve.js')).runGateway(program));
for (const command of [publishCommand(), receiveCommand(), streamsCommand(), endpointsCommand(), tokenCommand()]) program.addCommand(command);
usageExitsTwo(program);
await program.parseAsync();

/** A usage error exits 2 (like a configuration the schema refuses) in every command; --help exits 0. */
function usageExitsTwo(command: Command): void {
  command.exitOverride((error) => process.exit(error.exitCode === 0 ? EXIT.ok : EXIT.usage));
  command.commands.forEach(usageExitsTwo);
}
