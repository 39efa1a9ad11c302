import { Command, Option } from 'commander';
import { AdminClient, type StreamSpec } from '@mirrorstream/producer';
import { action, apiKeyOf, EXIT, gatewayUrls, UsageError, withGatewayOptions, type ClientFlags } from './client.js';

/**
 * `mirrorstream streams|endpoints|token`: the HTTP API's administration with the API key. Each
 * prints the gateway's JSON answer on stdout (`token` prints the token alone, for `$(...)`).
 */

type Call = (admin: AdminClient) => Promise<unknown>;

type Options = ClientFlags & Record<string, string | boolean | undefined>;

/** A subcommand whose body is one admin call, given the operands (a variadic one spread) and the options. */
function adminCall(name: string, call: (args: string[], o: Options) => Call): (...received: unknown[]) => Promise<void> {
  return action(name, async (...received: unknown[]) => {
    const command = received.at(-1) as Command;
    const o = command.opts<Options>();
    const answer = await call(command.args, o)(new AdminClient(gatewayUrls(o, process.env), apiKeyOf(o, process.env)));
    if (answer !== undefined) process.stdout.write(typeof answer === 'string' ? `${answer}\n` : `${JSON.stringify(answer, null, 2)}\n`);
    return EXIT.ok;
  });
}

/** A subcommand with the gateway options, the action taking its own options after the arguments. */
function sub(name: string, description: string): Command {
  return withGatewayOptions(new Command(name)).description(description);
}

export function streamsCommand(): Command {
  const streams = new Command('streams').description('list, show, create and delete streams');
  streams.addCommand(sub('list', 'every stream (JSON)').action(adminCall('streams list', () => (a) => a.listStreams())));
  streams.addCommand(
    sub('get', "a stream's spec and state (JSON)")
      .argument('<stream>')
      .action(adminCall('streams get', ([id]) => (a) => a.getStream(id!))),
  );
  streams.addCommand(
    sub('health', "a stream's health: per endpoint state, lag, rate, switches (JSON)")
      .argument('<stream>')
      .action(adminCall('streams health', ([id]) => (a) => a.streamHealth(id!))),
  );
  streams.addCommand(
    sub('create', 'create a stream with its endpoints in priority order')
      .argument('<stream>')
      .argument('[endpoints...]', 'endpoint ids, highest priority first (or endpoint_list in --spec)')
      .addOption(new Option('--mode <mode>', 'failover: one active endpoint; mirror: every endpoint gets every chunk').choices(['failover', 'mirror']))
      .addOption(new Option('--spec <json>', 'more of the stream spec as a JSON object (policy, retention, failback, mirror_k, reliability; endpoint_list with listening endpoints as objects, instead of the arguments): docs/http-api.md'))
      .action(
        adminCall('streams create', ([id, ...endpoints], o) => (a) => {
          const spec = specOf(o.spec as string | undefined);
          // the list comes from one place: the arguments, or --spec (which can hold listening endpoints)
          if (endpoints.length > 0 && spec.endpoint_list !== undefined) throw new UsageError('endpoints as arguments or endpoint_list in --spec, not both');
          if (endpoints.length === 0 && spec.endpoint_list === undefined) throw new UsageError('no endpoints: give their ids as arguments, or endpoint_list in --spec');
          return a.createStream({ ...spec, stream_id: id!, endpoint_list: spec.endpoint_list ?? endpoints, ...(o.mode ? { mode: o.mode as 'failover' | 'mirror' } : {}) });
        }),
      ),
  );
  streams.addCommand(
    sub('delete', 'delete a stream (its receivers get END)')
      .argument('<stream>')
      .action(adminCall('streams delete', ([id]) => (a) => a.deleteStream(id!))),
  );
  return streams;
}

export function endpointsCommand(): Command {
  const endpoints = new Command('endpoints').description("endpoints: health, and changes to a stream's list while it runs");
  endpoints.addCommand(sub('list', 'every endpoint with its health (JSON)').action(adminCall('endpoints list', () => (a) => a.listEndpoints())));
  endpoints.addCommand(
    sub('health', "an endpoint's health (JSON)")
      .argument('<endpoint>')
      .action(adminCall('endpoints health', ([id]) => (a) => a.endpointHealth(id!))),
  );
  endpoints.addCommand(
    sub('add', "add an endpoint to a stream's list")
      .argument('<stream>')
      .argument('<endpoint>')
      .addOption(new Option('--priority <n>', 'its position, 0 = first (default: last)'))
      .addOption(new Option('--url <url>', 'a listening receiver: the gateway dials this url (with --token)'))
      .addOption(new Option('--token <secret>', 'the secret the gateway presents to the listening receiver'))
      .action(
        adminCall('endpoints add', ([stream, id], o) => (a) => {
          if ((o.url === undefined) !== (o.token === undefined)) throw new UsageError('--url and --token go together (a listening receiver)');
          const priority = o.priority === undefined ? undefined : Number(o.priority);
          if (priority !== undefined && !(Number.isInteger(priority) && priority >= 0)) throw new UsageError('--priority: an integer >= 0');
          const listening = typeof o.url === 'string' && typeof o.token === 'string' ? { url: o.url, token: o.token } : {};
          return a.addEndpoint(stream!, { endpoint_id: id!, ...(priority === undefined ? {} : { priority }), ...listening });
        }),
      ),
  );
  endpoints.addCommand(
    sub('remove', "remove an endpoint from a stream's list (it gets END)")
      .argument('<stream>')
      .argument('<endpoint>')
      .action(adminCall('endpoints remove', ([stream, id]) => (a) => a.removeEndpoint(stream!, id!))),
  );
  endpoints.addCommand(
    sub('reorder', "a stream's endpoints in a new priority order (the same set)")
      .argument('<stream>')
      .argument('<endpoints...>', 'endpoint ids, highest priority first')
      .action(adminCall('endpoints reorder', ([stream, ...ids]) => (a) => a.reorderEndpoints(stream!, ids))),
  );
  return endpoints;
}

export function tokenCommand(): Command {
  return sub('token', 'issue an endpoint token for a receiver that dials in; prints the token alone')
    .argument('<endpoint>')
    .addOption(new Option('--ttl <seconds>', 'lifetime (default: the gateway\'s)'))
    .addOption(new Option('--json', 'print the whole answer {endpoint_id, token, expires_at}'))
    .action(
      adminCall('token', ([id], o) => async (a) => {
        const ttl = o.ttl === undefined ? undefined : Number(o.ttl);
        if (ttl !== undefined && !(Number.isInteger(ttl) && ttl > 0)) throw new UsageError('--ttl: a positive integer of seconds');
        const issued = await a.issueToken(id!, ttl === undefined ? {} : { ttl_s: ttl });
        return o.json ? issued : issued.token;
      }),
    );
}

/** `--spec`: a JSON object, the rest of a stream spec. */
function specOf(text: string | undefined): Partial<StreamSpec> {
  if (text === undefined) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UsageError('--spec: not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError('--spec: a JSON object');
  return value as Partial<StreamSpec>;
}
