import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { type HttpApiEvent, MAX_REQUEST_BODY_BYTES, startLocalApiGateway } from '../../local/api-gateway.ts';
import { acceptedFromOutside } from './kube/loopback.ts';

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

  describe('request body cap', () => {
    /** Sends headers, then `chunk` repeatedly until the server answers; resolves with what came back. */
    function streamUntilAnswered(
      url: string,
      headers: Record<string, string>,
      chunk: Buffer,
      maxChunks: number,
    ): Promise<{ status: number; contentType: string; body: string; sentBytes: number }> {
      return new Promise((resolve, reject) => {
        let sentBytes = 0;
        let answered = false;
        const req = request(`${url}/jobs`, { method: 'POST', headers }, (res) => {
          answered = true;
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => {
            body += d;
          });
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              contentType: String(res.headers['content-type']),
              body,
              sentBytes,
            }),
          );
        });
        req.on('error', (err) => {
          if (!answered) reject(err);
        });
        const pump = (n: number) => {
          if (answered || n >= maxChunks) return;
          sentBytes += chunk.length;
          if (req.write(chunk)) setImmediate(() => pump(n + 1));
          else req.once('drain', () => pump(n + 1));
        };
        req.flushHeaders();
        pump(0);
      });
    }

    it('answers 413 with a problem document on a declared length over the cap, before reading the body', async () => {
      const seen: HttpApiEvent[] = [];
      const api = await startLocalApiGateway({
        handler: async (event) => {
          seen.push(event);
          return { statusCode: 201 };
        },
      });
      try {
        const res = await streamUntilAnswered(
          api.url,
          { 'content-type': 'application/json', 'content-length': String(MAX_REQUEST_BODY_BYTES + 1) },
          Buffer.alloc(64 * 1024, 0x20),
          Math.ceil(MAX_REQUEST_BODY_BYTES / (64 * 1024)) + 1,
        );
        expect(res.status).toBe(413);
        expect(res.contentType).toBe('application/problem+json');
        expect(JSON.parse(res.body)).toMatchObject({
          type: 'https://trainkeeper.dev/problems/payload-too-large',
          status: 413,
          errors: [],
        });
        expect(res.sentBytes).toBeLessThan(MAX_REQUEST_BODY_BYTES);
        expect(seen).toEqual([]);
      } finally {
        await api.close();
      }
    });

    it('answers 413 as soon as a chunked body crosses the cap, without waiting for its end', async () => {
      const seen: HttpApiEvent[] = [];
      const api = await startLocalApiGateway({
        maxBodyBytes: 64 * 1024,
        handler: async (event) => {
          seen.push(event);
          return { statusCode: 201 };
        },
      });
      try {
        // A client that would send 64 MiB: the answer comes long before.
        const res = await streamUntilAnswered(
          api.url,
          { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
          Buffer.alloc(16 * 1024, 0x20),
          4096,
        );
        expect(res.status).toBe(413);
        expect(JSON.parse(res.body)).toMatchObject({ status: 413, title: 'Payload too large' });
        expect(res.sentBytes).toBeLessThan(16 * 1024 * 1024);
        expect(seen).toEqual([]);
      } finally {
        await api.close();
      }
    });

    it("passes a body of exactly the cap (10 MB, API Gateway's) to the handler", async () => {
      let length = -1;
      const api = await startLocalApiGateway({
        handler: async (event) => {
          length = Buffer.byteLength(event.body ?? '');
          return { statusCode: 204 };
        },
      });
      try {
        expect(MAX_REQUEST_BODY_BYTES).toBe(10 * 1024 * 1024);
        const res = await fetch(`${api.url}/jobs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: Buffer.alloc(MAX_REQUEST_BODY_BYTES, 0x20),
        });
        expect(res.status).toBe(204);
        expect(length).toBe(MAX_REQUEST_BODY_BYTES);
        const over = await fetch(`${api.url}/jobs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: Buffer.alloc(MAX_REQUEST_BODY_BYTES + 1, 0x20),
        });
        expect(over.status).toBe(413);
      } finally {
        await api.close();
      }
    });
  });
});
