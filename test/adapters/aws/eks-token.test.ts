import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { EksTokenProvider, eksToken, TOKEN_REUSE_MS } from '../../../adapters/aws/eks-token.ts';

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
const hmac = (key: Buffer | string, s: string) => createHmac('sha256', key).update(s, 'utf8').digest();

/**
 * The expected token, computed from the SigV4 spec steps (canonical request → string to sign → HMAC key
 * chain → signature) with node:crypto only, independently of the adapter's signer.
 */
function expectedToken(o: {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  region: string;
  cluster: string;
  amzDate: string;
}): string {
  const date = o.amzDate.slice(0, 8);
  const host = `sts.${o.region}.amazonaws.com`;
  const scope = `${date}/${o.region}/sts/aws4_request`;
  const enc = (s: string) => encodeURIComponent(s);
  const params: Record<string, string> = {
    Action: 'GetCallerIdentity',
    Version: '2011-06-15',
    'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
    'X-Amz-Credential': `${o.accessKeyId}/${scope}`,
    'X-Amz-Date': o.amzDate,
    'X-Amz-Expires': '60',
    'X-Amz-SignedHeaders': 'host;x-k8s-aws-id',
    ...(o.sessionToken ? { 'X-Amz-Security-Token': o.sessionToken } : {}),
  };
  const query = Object.keys(params)
    .sort()
    .map((k) => `${enc(k)}=${enc(params[k] as string)}`)
    .join('&');
  const canonicalRequest = [
    'GET',
    '/',
    query,
    `host:${host}\nx-k8s-aws-id:${o.cluster}\n`,
    'host;x-k8s-aws-id',
    sha256(''),
  ].join('\n');
  const stringToSign = ['AWS4-HMAC-SHA256', o.amzDate, scope, sha256(canonicalRequest)].join('\n');
  const kDate = hmac(`AWS4${o.secretAccessKey}`, date);
  const kSigning = hmac(hmac(hmac(kDate, o.region), 'sts'), 'aws4_request');
  const signature = hmac(kSigning, stringToSign).toString('hex');
  const url = `https://${host}/?${query}&X-Amz-Signature=${signature}`;
  return `k8s-aws-v1.${Buffer.from(url).toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')}`;
}

const base = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  region: 'us-west-2',
  cluster: 'hyperpod-eks-1',
  amzDate: '20261128T120000Z',
};

describe('eksToken', () => {
  it.each([
    ['long-term credentials', base],
    ['session credentials', { ...base, sessionToken: 'FQoGZXIvYXdzE//token+with/special=chars' }],
    ['another region and cluster', { ...base, region: 'eu-central-1', cluster: 'c2' }],
  ])('presigns STS GetCallerIdentity exactly as SigV4 prescribes with %s', async (_, o) => {
    const token = await eksToken({
      clusterName: o.cluster,
      region: o.region,
      credentials: {
        accessKeyId: o.accessKeyId,
        secretAccessKey: o.secretAccessKey,
        ...('sessionToken' in o ? { sessionToken: o.sessionToken } : {}),
      },
      signingDate: new Date('2026-11-28T12:00:00Z'),
    });
    expect(token).toBe(expectedToken(o));
    expect(token).not.toMatch(/[=+/]/);
  });

  it('decodes to an STS URL with a 60 s expiry that signs the cluster header', async () => {
    const token = await eksToken({
      clusterName: 'c',
      region: 'us-east-1',
      credentials: { accessKeyId: 'A', secretAccessKey: 'S' },
      signingDate: new Date(0),
    });
    const url = new URL(Buffer.from(token.slice('k8s-aws-v1.'.length), 'base64url').toString());
    expect(url.host).toBe('sts.us-east-1.amazonaws.com');
    expect(url.searchParams.get('X-Amz-Expires')).toBe('60');
    expect(url.searchParams.get('X-Amz-SignedHeaders')).toBe('host;x-k8s-aws-id');
  });
});

describe('EksTokenProvider', () => {
  it('reuses a token for 14 minutes and signs a fresh one after', async () => {
    let now = Date.parse('2026-11-28T12:00:00Z');
    const provider = new EksTokenProvider({
      clusterName: 'c',
      region: 'us-east-1',
      credentials: { accessKeyId: 'A', secretAccessKey: 'S' },
      now: () => now,
    });
    const first = await provider.getToken();
    now += TOKEN_REUSE_MS - 1;
    expect(await provider.getToken()).toBe(first);
    now += 1;
    const second = await provider.getToken();
    expect(second).not.toBe(first);
    expect(second).toBe(
      await eksToken({
        clusterName: 'c',
        region: 'us-east-1',
        credentials: { accessKeyId: 'A', secretAccessKey: 'S' },
        signingDate: new Date(now),
      }),
    );
  });

  it('shares one signing among concurrent callers', async () => {
    let calls = 0;
    const provider = new EksTokenProvider({
      clusterName: 'c',
      region: 'us-east-1',
      credentials: async () => {
        calls += 1;
        return { accessKeyId: 'A', secretAccessKey: 'S' };
      },
      now: () => 0,
    });
    const tokens = await Promise.all([provider.getToken(), provider.getToken(), provider.getToken()]);
    expect(new Set(tokens).size).toBe(1);
    expect(calls).toBe(1);
  });
});
