/**
 * The browser bundle of the receiver SDK (receiver-sdk/dist/browser/mirrorstream-receiver.js).
 * One fix goes into the bundled @fails-components/webtransport: its WebSocket tunnel joins
 * host and path with a slash of its own, so a session path `/v1/wt?ticket=…` was dialed as
 * `wss://host:port//v1/wt?ticket=…` (a path a strict proxy routes elsewhere). The build fails
 * if that line changed, so a library update is looked at, not silently unpatched.
 */
import { readFile } from 'node:fs/promises';
import { build, type Plugin } from 'esbuild';

const JOIN = "if (path) url = url + '/' + path";

const tunnelUrlJoin: Plugin = {
  name: 'tunnel-url-join',
  setup(b) {
    b.onLoad({ filter: /@fails-components[\\/]webtransport[\\/]lib[\\/]http2[\\/]browser[\\/]browser\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      if (!source.includes(JOIN)) throw new Error(`${args.path}: the tunnel's URL join changed; review scripts/build-browser.ts`);
      return { contents: source.replace(JOIN, "if (path) url = url + '/' + path.replace(/^\\/+/, '')"), loader: 'js' };
    });
  },
};

await build({
  entryPoints: ['receiver-sdk/src/browser.ts'],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  sourcemap: true,
  outfile: 'receiver-sdk/dist/browser/mirrorstream-receiver.js',
  logLevel: 'warning',
  plugins: [tunnelUrlJoin],
});
