import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { makeSigner } from '../../../adapters/aws/sigv4.ts';
import { REMOTE_WRITE_HEADERS } from '../../../adapters/prometheus/remote-write.ts';

const hex = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();

/** SigV4 from the spec: canonical request → string to sign → HMAC chain. Independent of @smithy. */
function expectedAuthorization(opts: {
  host: string;
  path: string;
  headers: Record<string, string>;
  body: Uint8Array;
  amzDate: string;
  region: string;
  service: string;
  accessKeyId: string;
  secretAccessKey: string;
}): string {
  const payloadHash = hex(opts.body);
  const all: Record<string, string> = {
    ...Object.fromEntries(Object.entries(opts.headers).map(([k, v]) => [k.toLowerCase(), v.trim()])),
    host: opts.host,
    'x-amz-date': opts.amzDate,
    'x-amz-content-sha256': payloadHash,
  };
  const names = Object.keys(all).sort();
  const canonicalRequest = [
    'POST',
    opts.path,
    '',
    ...names.map((n) => `${n}:${all[n]}`),
    '',
    names.join(';'),
    payloadHash,
  ].join('\n');
  const day = opts.amzDate.slice(0, 8);
  const scope = `${day}/${opts.region}/${opts.service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', opts.amzDate, scope, hex(canonicalRequest)].join('\n');
  const kDate = hmac(`AWS4${opts.secretAccessKey}`, day);
  const kSigning = hmac(hmac(hmac(kDate, opts.region), opts.service), 'aws4_request');
  const signature = createHmac('sha256', kSigning).update(stringToSign).digest('hex');
  return `AWS4-HMAC-SHA256 Credential=${opts.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
}

describe('SigV4 signing for Amazon Managed Prometheus', () => {
  it('signs a fixed remote-write request exactly as the SigV4 specification computes it', async () => {
    const credentials = {
      accessKeyId: 'AKIDEXAMPLE',
      secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
    };
    const body = new Uint8Array([0x0a, 0x03, 0x66, 0x6f, 0x6f, 0xff, 0x00]);
    const host = 'aps-workspaces.us-west-2.amazonaws.com';
    const path = '/workspaces/ws-12345678-abcd/api/v1/remote_write';
    const sign = makeSigner({ region: 'us-west-2', service: 'aps', credentials });
    const headers = await sign({
      method: 'POST',
      url: `https://${host}${path}`,
      headers: { ...REMOTE_WRITE_HEADERS },
      body,
      signingDate: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)),
    });
    const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
    expect(lower['x-amz-date']).toBe('20260102T030405Z');
    expect(lower.authorization).toBe(
      expectedAuthorization({
        host,
        path,
        headers: { ...REMOTE_WRITE_HEADERS },
        body,
        amzDate: '20260102T030405Z',
        region: 'us-west-2',
        service: 'aps',
        ...credentials,
      }),
    );
  });

  it('adds the session token of temporary credentials', async () => {
    const sign = makeSigner({
      region: 'eu-west-1',
      service: 'aps',
      credentials: async () => ({ accessKeyId: 'ASIA1', secretAccessKey: 's', sessionToken: 'tok' }),
    });
    const headers = await sign({ method: 'POST', url: 'https://example.com/x', headers: {}, body: 'b' });
    expect(headers['x-amz-security-token']).toBe('tok');
    expect(headers.authorization).toMatch(/Credential=ASIA1\/\d{8}\/eu-west-1\/aps\/aws4_request/);
  });
});
