/**
 * The local stand-in for API Gateway (HTTP API, payload format 2.0): a loopback HTTP server that turns
 * each request into the event API Gateway would hand the `api` Lambda, and the handler's result back into
 * an HTTP response. Bound to 127.0.0.1 only: locally there is no IAM, so the principal is `local`.
 *
 * Extra routes that are not API Gateway's (e.g. `GET /metrics` in Prometheus text format) are served by
 * `extraRoutes` before the handler is asked.
 *
 * Request bodies are capped as API Gateway caps them (MAX_REQUEST_BODY_BYTES): a larger one is answered
 * 413 without being read to its end — refused on its `content-length` before a byte is read, or as soon
 * as a chunked body crosses the cap — and the connection is closed.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { problem } from '../functions/shell/http.ts';

/** API Gateway HTTP APIs' request payload limit (10 MB), documented in functions/README.md. */
export const MAX_REQUEST_BODY_BYTES = 10 * 1024 * 1024;

/** The subset of APIGatewayProxyEventV2 our `api` handler reads. */
export interface HttpApiEvent {
  version: '2.0';
  routeKey: string;
  rawPath: string;
  rawQueryString: string;
  headers: Record<string, string>;
  queryStringParameters?: Record<string, string>;
  requestContext: {
    accountId: string;
    apiId: string;
    domainName: string;
    http: { method: string; path: string; protocol: string; sourceIp: string; userAgent: string };
    requestId: string;
    routeKey: string;
    stage: string;
    time: string;
    timeEpoch: number;
  };
  body?: string;
  isBase64Encoded: boolean;
}

/** A structured API Gateway v2 result (a plain string or object is also accepted, as API Gateway does). */
export interface HttpApiResult {
  statusCode: number;
  headers?: Record<string, string>;
  body?: string;
  isBase64Encoded?: boolean;
}

export type HttpApiHandler = (event: HttpApiEvent) => Promise<HttpApiResult | string | object>;

export type ExtraRoute = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

/** Builds the API Gateway v2 event for one request (exported for tests that want real event shapes). */
export function toHttpApiEvent(req: IncomingMessage, body: Buffer, now: number): HttpApiEvent {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[key.toLowerCase()] = Array.isArray(value) ? value.join(',') : value;
  }
  const query: Record<string, string> = {};
  for (const [key, value] of url.searchParams) query[key] = key in query ? `${query[key]},${value}` : value;
  const isText =
    body.length === 0 || /json|yaml|text|x-www-form/.test(headers['content-type'] ?? 'application/json');
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    headers,
    ...(Object.keys(query).length ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      http: {
        method: req.method ?? 'GET',
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: new Date(now).toUTCString(),
      timeEpoch: now,
    },
    ...(body.length ? { body: isText ? body.toString('utf8') : body.toString('base64') } : {}),
    isBase64Encoded: !isText,
  };
}

function writeResult(res: ServerResponse, result: HttpApiResult | string | object): void {
  // API Gateway's v2 rule: a result without statusCode is a 200 JSON body.
  if (typeof result === 'string' || !('statusCode' in result)) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(typeof result === 'string' ? result : JSON.stringify(result));
    return;
  }
  const r = result as HttpApiResult;
  res.writeHead(r.statusCode, r.headers ?? {});
  res.end(r.body === undefined ? undefined : Buffer.from(r.body, r.isBase64Encoded ? 'base64' : 'utf8'));
}

/**
 * Reads the body up to `limit` bytes; undefined (and the stream paused, nothing more read) when the
 * declared or the received length goes over it. Never holds more than `limit` bytes.
 */
function readCappedBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.pause();
        chunks.length = 0;
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

/** 413 as a problem document, then the connection is closed: the rest of the body is never read. */
function payloadTooLarge(res: ServerResponse, limit: number): void {
  const result = problem(
    413,
    'payload-too-large',
    'Payload too large',
    `the request body is over ${limit} bytes (API Gateway's payload limit)`,
  );
  res.shouldKeepAlive = false;
  res.writeHead(result.statusCode, { ...result.headers, connection: 'close' });
  res.end(result.body, () => res.socket?.destroy());
}

export interface LocalApiGateway {
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** Starts the loopback API on `port` (0 = a free one). */
export async function startLocalApiGateway(options: {
  handler: HttpApiHandler;
  port?: number;
  extraRoutes?: ExtraRoute[];
  onError?: (err: unknown) => void;
  /** Request body cap in bytes. Default MAX_REQUEST_BODY_BYTES (API Gateway's). */
  maxBodyBytes?: number;
}): Promise<LocalApiGateway> {
  const limit = options.maxBodyBytes ?? MAX_REQUEST_BODY_BYTES;
  const server = createServer(async (req, res) => {
    try {
      for (const route of options.extraRoutes ?? []) if (await route(req, res)) return;
      const body = await readCappedBody(req, limit);
      if (body === undefined) return payloadTooLarge(res, limit);
      const event = toHttpApiEvent(req, body, Date.now());
      writeResult(res, await options.handler(event));
    } catch (err) {
      // API Gateway answers a failed Lambda invocation with 500 Internal Server Error.
      options.onError?.(err);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: 'Internal Server Error' }));
    }
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
