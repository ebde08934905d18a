import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { type HttpApiEvent, startLocalApiGateway } from '../../local/api-gateway.ts';
import { acceptedFromOutside } from '../local-kube/loopback.ts';

describe('local API Gateway', () => {
  it('turns a request into an API Gateway v2 event and the result back into a response', async () => {
    const seen: HttpApiEvent[] = [];
    const api = await startLocalApiGateway({
      handler: async (event) => {
        seen.push(event);
        return { statusCode: 201, headers: { 'content-type': 'application/json' }, body: '{"ok":true}' };
      },
    });
    try {
      const res = await fetch(`${api.url}/jobs?namespace=a&limit=2`, {
        method: 'POST',
        headers: { 'content-type': 'application/yaml', 'Idempotency-Key': 'k1' },
        body: 'kind: HyperPodPyTorchJob\n',
      });
      expect(res.status).toBe(201);
      expect(await res.json()).toEqual({ ok: true });
      const event = seen[0]!;
      expect(event.version).toBe('2.0');
      expect(event.requestContext.http.method).toBe('POST');
      expect(event.rawPath).toBe('/jobs');
      expect(event.queryStringParameters).toEqual({ namespace: 'a', limit: '2' });
      expect(event.headers['idempotency-key']).toBe('k1');
      expect(event.body).toBe('kind: HyperPodPyTorchJob\n');
      expect(event.isBase64Encoded).toBe(false);
    } finally {
      await api.close();
    }
  });

  it("listens on loopback only (the API and /metrics): the host's other addresses are refused", async () => {
    const api = await startLocalApiGateway({ handler: async () => ({ statusCode: 204 }) });
    try {
      const { address, port } = api.server.address() as AddressInfo;
      expect(address).toBe('127.0.0.1');
      expect(new URL(api.url).hostname).toBe('127.0.0.1');
      expect(await acceptedFromOutside(port)).toEqual([]);
    } finally {
      await api.close();
    }
  });

  it('answers 500 like API Gateway when the handler throws, and serves extra routes first', async () => {
    const api = await startLocalApiGateway({
      handler: async () => {
        throw new Error('boom');
      },
      extraRoutes: [
        async (req, res) => {
          if (req.url !== '/metrics') return false;
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end('up 1\n');
          return true;
        },
      ],
    });
    try {
      expect((await fetch(`${api.url}/jobs`)).status).toBe(500);
      const metrics = await fetch(`${api.url}/metrics`);
      expect(await metrics.text()).toBe('up 1\n');
    } finally {
      await api.close();
    }
  });
});
