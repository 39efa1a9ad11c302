import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { HTTP_STATUS } from '../../gateway/src/http/errors.js';
import { ERROR_CODES, type ErrorCode } from '../../receiver-sdk/src/protocol/index.js';

describe('error code registry', () => {
  it('docs/errors.md lists exactly the registry, with the HTTP status the API uses', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    const rows = [...doc.matchAll(/^\| `(MS_[A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])]);
    const registry = (Object.keys(ERROR_CODES) as ErrorCode[]).map((c) => [c, HTTP_STATUS[c] ?? 500]);
    expect(rows).toEqual(registry);
  });
});
