/**
 * A self-signed X.509 certificate for the local API server, minted with node:crypto alone (Node can sign
 * but has no certificate builder, so the DER is assembled here; no openssl binary needed).
 *
 * Why TLS on loopback at all: both real clients refuse a bearer token over plain HTTP. client-go (kubectl)
 * silently drops it, and `@kubernetes/client-node` rejects an `http:` server unless `skipTLSVerify` is
 * set. With HTTPS and this certificate as the cluster CA, both are configured exactly as for EKS
 * (server + CA data + token).
 *
 * The certificate is its own CA (basicConstraints CA:true, keyCertSign) and names the loopback addresses
 * in subjectAltName, so OpenSSL (Node) and Go (kubectl) both accept it as a trusted root serving itself.
 */
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';

/** A PEM certificate and its PEM (PKCS#8) private key. */
export interface SelfSignedCertificate {
  cert: string;
  key: string;
}

const tlv = (tag: number, content: Buffer): Buffer => {
  const n = content.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
    len = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), len, content]);
};
const seq = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => tlv(0x31, Buffer.concat(items));
const oid = (dotted: string): Buffer => {
  const [a = 0, b = 0, ...rest] = dotted.split('.').map(Number);
  const out = [40 * a + b];
  for (const v of rest) {
    const chunk = [v & 0x7f];
    for (let x = v >> 7; x > 0; x >>= 7) chunk.unshift((x & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
};
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, 'utf8'));
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const octets = (b: Buffer) => tlv(0x04, b);
const bits = (b: Buffer) => tlv(0x03, Buffer.concat([Buffer.from([0]), b]));
const utcTime = (d: Date) =>
  tlv(0x17, Buffer.from(`${d.toISOString().slice(2, 19).replace(/[-:T]/g, '')}Z`, 'ascii'));
const extension = (id: string, critical: boolean, value: Buffer) =>
  seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));

const ipBytes = (ip: string): Buffer => {
  if (ip.includes(':')) {
    // IPv6: only the loopback/compressed forms we use ("::1").
    const [head = '', tail = ''] = ip.split('::');
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
    return Buffer.from(groups.flatMap((g) => [(parseInt(g, 16) >> 8) & 0xff, parseInt(g, 16) & 0xff]));
  }
  return Buffer.from(ip.split('.').map(Number));
};

/**
 * Mints an ECDSA P-256 certificate valid from a day ago for `days` days. Invariants: a fresh key and a random
 * positive serial every call; `ips` and `dnsNames` go into subjectAltName (Go ignores the CN).
 */
export function selfSignedCertificate(
  options: { commonName?: string; ips?: string[]; dnsNames?: string[]; days?: number; now?: number } = {},
): SelfSignedCertificate {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const now = options.now ?? Date.now();
  const name = seq(set(seq(oid('2.5.4.3'), utf8(options.commonName ?? 'trainkeeper-local-kube'))));
  // DER INTEGER: positive (top bit clear) and minimal (a leading 0x00 is illegal padding, which OpenSSL
  // and Go reject), so the first byte is kept in 0x40–0x7f.
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x3f) | 0x40;
  const ecdsaWithSha256 = seq(oid('1.2.840.10045.4.3.2'));
  const altNames = Buffer.concat([
    ...(options.dnsNames ?? ['localhost']).map((d) => tlv(0x82, Buffer.from(d, 'ascii'))),
    ...(options.ips ?? ['127.0.0.1', '::1']).map((ip) => tlv(0x87, ipBytes(ip))),
  ]);
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))),
    tlv(0x02, serial),
    ecdsaWithSha256,
    name,
    seq(utcTime(new Date(now - 86_400_000)), utcTime(new Date(now + (options.days ?? 365) * 86_400_000))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    tlv(
      0xa3,
      seq(
        extension('2.5.29.19', true, seq(bool(true))),
        // keyUsage: digitalSignature (bit 0) + keyCertSign (bit 5) → 0b10000100, 2 unused bits.
        extension('2.5.29.15', true, tlv(0x03, Buffer.from([0x02, 0x84]))),
        extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'))),
        extension('2.5.29.17', false, seq(altNames)),
      ),
    ),
  );
  const signature = sign('sha256', tbs, privateKey);
  const der = seq(tbs, ecdsaWithSha256, bits(signature));
  const body = der
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n');
  return {
    cert: `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`,
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}
