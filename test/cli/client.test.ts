import { createHash, createHmac } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeSigner } from '../../adapters/aws/sigv4.ts';
import {
  ApiClient,
  EndpointError,
  isAwsEndpoint,
  NO_ENDPOINT_MESSAGE,
  regionOfEndpoint,
  resolveEndpoint,
} from '../../cli/client.ts';
import { parseJobArg } from '../../cli/commands/common.ts';
import { defaultIdempotencyKey, rulesFromDocument } from '../../cli/commands/jobs.ts';
import { CHAOS_FAULT_NAMES, LOCAL_STATE_FILE } from '../../cli/commands/local.ts';
import { CHAOS_FAULTS } from '../../local/chaos.ts';
import { STATE_FILE } from '../../local/control-plane.ts';

/** SigV4 computed from the specification with node:crypto only (no AWS library). */
function sigv4Reference(input: {
  method: string;
  host: string;
  path: string;
  query: [string, string][];
  headers: Record<string, string>;
  body: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  service: string;
  amzDate: string;
}): { authorization: string; signedHeaders: string } {
  const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
  const hmac = (key: Buffer | string, s: string) => createHmac('sha256', key).update(s, 'utf8').digest();
  const rfc3986 = (s: string) =>
    encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const payloadHash = sha256(input.body);
  const headers: Record<string, string> = {
    ...Object.fromEntries(Object.entries(input.headers).map(([k, v]) => [k.toLowerCase(), v.trim()])),
    host: input.host,
    'x-amz-date': input.amzDate,
    'x-amz-content-sha256': payloadHash,
  };
  const names = Object.keys(headers).sort();
  const canonicalQuery = input.query
    .map(([k, v]) => [rfc3986(k), rfc3986(v)] as const)
    .sort(([a, av], [b, bv]) => (a === b ? (av < bv ? -1 : 1) : a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalRequest = [
    input.method,
    input.path.split('/').map(rfc3986).join('/'),
    canonicalQuery,
    ...names.map((n) => `${n}:${headers[n]}`),
    '',
    names.join(';'),
    payloadHash,
  ].join('\n');
  const day = input.amzDate.slice(0, 8);
  const scope = `${day}/${input.region}/${input.service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', input.amzDate, scope, sha256(canonicalRequest)].join('\n');
  const kDate = hmac(`AWS4${input.secretAccessKey}`, day);
  const kSigning = hmac(hmac(hmac(kDate, input.region), input.service), 'aws4_request');
  const signature = createHmac('sha256', kSigning).update(stringToSign, 'utf8').digest('hex');
  return {
    signedHeaders: names.join(';'),
    authorization: `AWS4-HMAC-SHA256 Credential=${input.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`,
  };
}

describe('SigV4 signing of API Gateway requests', () => {
  const credentials = {
    accessKeyId: 'AKIDEXAMPLE',
    secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  };
  const date = new Date('2015-08-30T12:36:00Z');

  it.each([
    {
      name: 'a GET with a query string',
      method: 'GET',
      path: '/jobs',
      query: [
        ['phase', 'Running'],
        ['namespace', 'team-a'],
      ] as [string, string][],
      headers: { accept: 'application/json' } as Record<string, string>,
      body: '',
    },
    {
      name: 'a POST with a YAML body and an idempotency key',
      method: 'POST',
      path: '/jobs',
      query: [] as [string, string][],
      headers: {
        accept: 'application/json',
        'content-type': 'application/yaml',
        'idempotency-key': 'sha256-abc',
      } as Record<string, string>,
      body: 'apiVersion: sagemaker.amazonaws.com/v1\nkind: HyperPodPyTorchJob\n',
    },
    {
      name: 'a PUT to a path with a namespace and a dotted name',
      method: 'PUT',
      path: '/jobs/team-a/llama.v2/rules',
      query: [] as [string, string][],
      headers: { 'content-type': 'application/json' } as Record<string, string>,
      body: '[{"name":"X","logPattern":".*x.*"}]',
    },
  ])('signs $name exactly as the SigV4 specification computes it', async (c) => {
    const host = 'abc123defg.execute-api.eu-west-1.amazonaws.com';
    const qs = c.query.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
    const sign = makeSigner({ region: 'eu-west-1', service: 'execute-api', credentials });
    const signed = await sign({
      method: c.method,
      url: `https://${host}${c.path}${qs ? `?${qs}` : ''}`,
      headers: c.headers,
      ...(c.body ? { body: c.body } : {}),
      signingDate: date,
    });
    const expected = sigv4Reference({
      ...c,
      host,
      ...credentials,
      region: 'eu-west-1',
      service: 'execute-api',
      amzDate: '20150830T123600Z',
    });
    expect(signed.authorization).toBe(expected.authorization);
    expect(signed['x-amz-date']).toBe('20150830T123600Z');
  });

  it('adds the session token of temporary credentials as x-amz-security-token and signs it', async () => {
    const sign = makeSigner({
      region: 'us-east-1',
      service: 'execute-api',
      credentials: { ...credentials, sessionToken: 'TOKEN123' },
    });
    const signed = await sign({
      method: 'GET',
      url: 'https://abc.execute-api.us-east-1.amazonaws.com/jobs',
      headers: {},
      signingDate: date,
    });
    expect(signed['x-amz-security-token']).toBe('TOKEN123');
    expect(signed.authorization).toContain('x-amz-security-token');
  });
});

describe('ApiClient signing', () => {
  const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret/KEY' };

  it('signs every request to an API Gateway endpoint with the region of its host', async () => {
    // API Gateway cannot be reached from here: fetch is replaced for this one test and records what it got.
    const sent: { url: string; init: RequestInit }[] = [];
    const realFetch = globalThis.fetch;
    globalThis.fetch = (async (url: URL | string, init: RequestInit) => {
      sent.push({ url: String(url), init });
      return new Response(JSON.stringify({ items: [] }), { status: 200 });
    }) as typeof fetch;
    try {
      const client = new ApiClient({
        endpoint: 'https://abc123.execute-api.ap-south-1.amazonaws.com/',
        credentials: async () => credentials,
      });
      expect(await client.list({ namespace: 'team-a' })).toEqual({ items: [] });
    } finally {
      globalThis.fetch = realFetch;
    }
    expect(sent).toHaveLength(1);
    const headers = sent[0]?.init.headers as Record<string, string>;
    const expected = sigv4Reference({
      method: 'GET',
      host: 'abc123.execute-api.ap-south-1.amazonaws.com',
      path: '/jobs',
      query: [['namespace', 'team-a']],
      headers: { accept: 'application/json' },
      body: '',
      ...credentials,
      region: 'ap-south-1',
      service: 'execute-api',
      amzDate: headers['x-amz-date'] as string,
    });
    expect(headers.authorization).toBe(expected.authorization);
    expect(headers.host).toBeUndefined();
  });

  it('sends no signature to a loopback endpoint', async () => {
    let seen: IncomingHttpHeaders = {};
    const server = createServer((req, res) => {
      seen = req.headers;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"items":[]}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const client = new ApiClient({
        endpoint: `http://127.0.0.1:${port}`,
        credentials: () => Promise.reject(new Error('must not be asked for credentials')),
      });
      expect(await client.list({})).toEqual({ items: [] });
    } finally {
      server.close();
    }
    expect(seen.authorization).toBeUndefined();
    expect(seen['x-amz-date']).toBeUndefined();
  });
});

describe('endpoint resolution', () => {
  const root = mkdtempSync(join(tmpdir(), 'tk-cli-endpoint-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const emptyDir = () => mkdtempSync(join(root, 'cwd-'));

  it('prefers --endpoint over TRAINKEEPER_ENDPOINT and strips a trailing slash', () => {
    expect(
      resolveEndpoint({
        endpoint: 'http://127.0.0.1:1234/',
        env: { TRAINKEEPER_ENDPOINT: 'http://other' },
        cwd: emptyDir(),
      }),
    ).toBe('http://127.0.0.1:1234');
  });

  it('uses TRAINKEEPER_ENDPOINT when no --endpoint is given', () => {
    expect(resolveEndpoint({ env: { TRAINKEEPER_ENDPOINT: 'http://localhost:9' }, cwd: emptyDir() })).toBe(
      'http://localhost:9',
    );
  });

  it.each(['ApiUrl', 'apiUrl'])(
    'reads the %s output of .sst/outputs.json in the current directory',
    (key) => {
      const dir = emptyDir();
      mkdirSync(join(dir, '.sst'));
      writeFileSync(
        join(dir, '.sst', 'outputs.json'),
        JSON.stringify({ [key]: 'https://abc.execute-api.us-west-2.amazonaws.com' }),
      );
      expect(resolveEndpoint({ env: {}, cwd: dir })).toBe('https://abc.execute-api.us-west-2.amazonaws.com');
    },
  );

  it('throws the no-endpoint error when nothing is configured', () => {
    expect(() => resolveEndpoint({ env: {}, cwd: emptyDir() })).toThrow(EndpointError);
    expect(() => resolveEndpoint({ env: {}, cwd: emptyDir() })).toThrow(NO_ENDPOINT_MESSAGE);
  });

  it('rejects an endpoint that is not an http(s) URL with the field named', () => {
    expect(() => resolveEndpoint({ endpoint: 'ftp://x', env: {}, cwd: emptyDir() })).toThrow(
      'invalid endpoint ftp://x',
    );
  });

  it.each([
    ['https://abc123.execute-api.us-east-1.amazonaws.com', true, 'us-east-1'],
    ['https://abc123.execute-api.cn-north-1.amazonaws.com.cn/prod', true, 'cn-north-1'],
    ['http://127.0.0.1:8787', false, undefined],
    ['http://localhost:8787', false, undefined],
    ['https://api.example.com', false, undefined],
  ])('treats %s as an AWS endpoint: %s (region %s)', (url, aws, region) => {
    expect(isAwsEndpoint(url)).toBe(aws);
    expect(regionOfEndpoint(url)).toBe(region);
  });
});

describe('command-line values', () => {
  it.each([
    ['demo-llama', { name: 'demo-llama' }],
    ['team-a/llama.v2', { namespace: 'team-a', name: 'llama.v2' }],
  ])('parses the JOB argument %s', (value, expected) => {
    expect(parseJobArg(value)).toEqual(expected);
  });

  it.each(['a/b/c', 'Upper', '/name', 'ns/', ''])('rejects the JOB argument %j as a usage error', (value) => {
    expect(() => parseJobArg(value)).toThrow('expected NAME or NAMESPACE/NAME');
  });

  it.each([
    ['a list of rules', [{ name: 'A' }], [{ name: 'A' }]],
    [
      'an object with logMonitoringConfiguration',
      { logMonitoringConfiguration: [{ name: 'B' }] },
      [{ name: 'B' }],
    ],
    [
      'a whole manifest',
      { kind: 'HyperPodPyTorchJob', spec: { runPolicy: { logMonitoringConfiguration: [{ name: 'C' }] } } },
      [{ name: 'C' }],
    ],
  ])('takes the rules of %s', (_, doc, rules) => {
    expect(rulesFromDocument(doc)).toEqual(rules);
  });

  it.each([
    [
      'a manifest without rules',
      { kind: 'HyperPodPyTorchJob', spec: {} },
      'spec.runPolicy.logMonitoringConfiguration',
    ],
    ['a scalar', 'hello', ''],
  ])('rejects %s with the path of what is missing', (_, doc, path) => {
    try {
      rulesFromDocument(doc);
      expect.unreachable();
    } catch (err) {
      expect((err as { issues: { path: string }[] }).issues[0]?.path).toBe(path);
    }
  });

  it('derives the default idempotency key from the content, so the same file gives the same key', () => {
    expect(defaultIdempotencyKey('a: 1\n')).toBe(defaultIdempotencyKey('a: 1\n'));
    expect(defaultIdempotencyKey('a: 1\n')).not.toBe(defaultIdempotencyKey('a: 2\n'));
    expect(defaultIdempotencyKey('a: 1\n')).toMatch(/^sha256-[0-9a-f]{64}$/);
  });

  it('accepts exactly the faults and state file name the local control plane defines', () => {
    expect([...CHAOS_FAULT_NAMES]).toEqual([...CHAOS_FAULTS]);
    expect(LOCAL_STATE_FILE).toBe(STATE_FILE);
  });
});
