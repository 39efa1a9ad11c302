import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { cruise, type IForbiddenRuleType } from 'dependency-cruiser';
import { describe, expect, it } from 'vitest';

const rules = createRequire(import.meta.url)('../../.dependency-cruiser.cjs') as { forbidden: IForbiddenRuleType[] };

/**
 * One deliberate violation per layering rule of the restructured seams: a tree of two or
 * three files (paths as in the repository) in which exactly that import breaks the rule.
 * `npm run deps` proves the code keeps the rules; this proves each rule can fail.
 */
const VIOLATIONS: { rule: string; files: Record<string, string> }[] = [
  {
    rule: 'streams-never-see-the-engine',
    files: { 'gateway/src/streams/stream.ts': "import { x } from '../storage/jetstream/control.js'; export const y = x;", 'gateway/src/storage/jetstream/control.ts': 'export const x = 1;' },
  },
  {
    rule: 'decision-port-is-plain',
    files: { 'gateway/src/streams/decisions.ts': "import { x } from './roles.js'; export const y = x;", 'gateway/src/streams/roles.ts': 'export const x = 1;' },
  },
  {
    rule: 'registry-knows-no-timing',
    files: { 'gateway/src/core/registry.ts': "import { x } from './scheduler.js'; export const y = x;", 'gateway/src/core/scheduler.ts': 'export const x = 1;' },
  },
  {
    rule: 'only-composition-builds-parts',
    files: { 'gateway/src/gateway.ts': "import { Scheduler } from './core/scheduler.js'; export const s = new Scheduler();", 'gateway/src/core/scheduler.ts': 'export class Scheduler {}' },
  },
  {
    rule: 'sdk-lifecycle-knows-links-only',
    files: { 'receiver-sdk/src/lifecycle.ts': "import { x } from './inbound.js'; export const y = x;", 'receiver-sdk/src/inbound.ts': 'export const x = 1;' },
  },
  {
    rule: 'sdk-logic-knows-no-transport',
    files: { 'receiver-sdk/src/gateway-rotation.ts': "import { x } from './transports/webrtc.js'; export const y = x;", 'receiver-sdk/src/transports/webrtc.ts': 'export const x = 1;' },
  },
  {
    rule: 'clients-only-in-the-cli',
    files: { 'gateway/src/http/routes.ts': "import { x } from '../../../producer/src/admin.js'; export const y = x;", 'producer/src/admin.ts': 'export const x = 1;' },
  },
  {
    rule: 'sdk-transports-are-leaves',
    files: { 'receiver-sdk/src/transports/webtransport.ts': "import { x } from '../receiver.js'; export const y = x;", 'receiver-sdk/src/receiver.ts': 'export const x = 1;' },
  },
];

async function violationsOf(files: Record<string, string>): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'ms-deps-'));
  try {
    for (const [path, text] of Object.entries(files)) {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), `${text}\n`);
    }
    const result = await cruise(['gateway', 'receiver-sdk', 'producer'].filter((root) => Object.keys(files).some((p) => p.startsWith(root))), {
      ruleSet: { forbidden: rules.forbidden },
      validate: true,
      tsPreCompilationDeps: true,
      baseDir: dir,
    });
    const output = result.output;
    if (typeof output === 'string') throw new Error('expected the cruise result as an object');
    return output.summary.violations.map((v) => v.rule.name);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('dependency rules: each new seam rule fails on a deliberate violation', () => {
  for (const { rule, files } of VIOLATIONS) {
    it(rule, async () => {
      expect(rules.forbidden.map((r) => r.name)).toContain(rule);
      expect(await violationsOf(files)).toContain(rule);
    });
  }
});
