import { describe, expect, it } from 'vitest';
import { type HttpApiEvent, startLocalApiGateway } from '../../local/api-gateway.ts';

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
