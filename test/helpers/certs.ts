import { createHash, createPublicKey } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import selfsigned from 'selfsigned';

export interface TestCertificate {
  certFile: string;
  keyFile: string;
  /** PEM of the certificate (a Node client's `ca`). */
  cert: string;
  /** Base64 SHA-256 of its public key: Chromium's `--ignore-certificate-errors-spki-list`. */
  spki: string;
}

/** A self-signed certificate for 127.0.0.1, valid 10 days, written into `dir`. */
export async function testCertificate(dir: string): Promise<TestCertificate> {
  const pems = await selfsigned.generate([{ name: 'commonName', value: '127.0.0.1' }], {
    keyType: 'ec',
    curve: 'P-256',
    notAfterDate: new Date(Date.now() + 10 * 24 * 3600_000),
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
  });
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  writeFileSync(certFile, pems.cert);
  writeFileSync(keyFile, pems.private);
  const spki = createHash('sha256').update(createPublicKey(pems.cert).export({ type: 'spki', format: 'der' })).digest('base64');
  return { certFile, keyFile, cert: pems.cert, spki };
}
