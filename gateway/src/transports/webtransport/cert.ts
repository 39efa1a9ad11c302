import { createHash, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import selfsigned from 'selfsigned';

/** TLS material for WebTransport, with the SHA-256 of the DER certificate (for `serverCertificateHashes`). */
export interface TlsMaterial {
  cert: string;
  key: string;
  sha256: Uint8Array;
  selfSigned: boolean;
}

/**
 * A configured cert/key, or a generated self-signed one for development: ECDSA P-256
 * and at most 14 days of validity (13 here), which is what browsers require of a cert
 * they accept through `serverCertificateHashes`.
 */
export async function loadTls(certFile: string | undefined, keyFile: string | undefined, host: string): Promise<TlsMaterial> {
  let cert: string;
  let key: string;
  let selfSigned = false;
  if (certFile && keyFile) {
    [cert, key] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
  } else {
    const isIp = /^[\d.]+$/.test(host) || host.includes(':');
    const pems = await selfsigned.generate([{ name: 'commonName', value: host }], {
      // the one wall-clock read outside the injected Clock: peers check validity against real time
      notBeforeDate: new Date(Date.now() - 60_000),
      notAfterDate: new Date(Date.now() + 13 * 24 * 3600_000),
      keyType: 'ec',
      curve: 'P-256',
      extensions: [{ name: 'subjectAltName', altNames: [isIp ? { type: 7, ip: host } : { type: 2, value: host }] }],
    });
    cert = pems.cert;
    key = pems.private;
    selfSigned = true;
  }
  const sha256 = new Uint8Array(createHash('sha256').update(new X509Certificate(cert).raw).digest());
  return { cert, key, sha256, selfSigned };
}
