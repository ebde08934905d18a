/**
 * The agent's HTTP API, HyperPod elastic agent compatible (hyperpod-spec §5): `POST /start`, `/stop`,
 * `/update`, `/shutdown`, `GET /status`; plus `POST /elastic-event` (elastic scaling) and
 * `POST /inprocess-restart` (the in-process restart tier), extensions HyperPod's agent API does not document. Bodies are parsed with the zod schemas of core/agent-protocol.ts;
 * an invalid body is answered 422 with a FastAPI-style `detail` list (`type`, `loc`, `msg`), so HyperPod
 * clients read our errors as they read HyperPod's.
 *
 * The server only translates HTTP ↔ `AgentApi` calls; what a call does lives in the supervisor.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { z } from 'zod';
import {
  ElasticEventBody,
  InProcessRestartBody,
  type ParsedStartBody,
  StartBody,
  type StatusBody,
  StopBody,
  UpdateBody,
} from '../core/agent-protocol.ts';

/** The answer of one API call: HTTP status and JSON body. */
export interface ApiResult {
  code: number;
  body: unknown;
}

/** What the server calls; implemented by the agent runtime. */
export interface AgentApi {
  status(): StatusBody;
  start(body: ParsedStartBody): Promise<ApiResult>;
  update(body: z.output<typeof UpdateBody>, progress?: Record<string, unknown>): Promise<ApiResult>;
  stop(body: z.output<typeof StopBody>): Promise<ApiResult>;
  shutdown(): Promise<ApiResult>;
  /** `POST /elastic-event` (TrainKeeper extension, core/agent-protocol.ts `ElasticEventBody`). */
  elasticEvent(body: z.output<typeof ElasticEventBody>): Promise<ApiResult>;
  /** `POST /inprocess-restart` (TrainKeeper extension, core/agent-protocol.ts `InProcessRestartBody`). */
  inProcessRestart(body: z.output<typeof InProcessRestartBody>): Promise<ApiResult>;
}

/** One FastAPI-style validation error entry. */
export interface DetailEntry {
  type: string;
  loc: (string | number)[];
  msg: string;
}

/** Maps zod issues to FastAPI's `detail` list (`loc` starts with `body`). */
export function toDetail(error: z.ZodError): DetailEntry[] {
  return error.issues.map((i) => ({
    type: i.code === 'invalid_type' && i.input === undefined ? 'missing' : i.code,
    loc: ['body', ...i.path.map((p) => (typeof p === 'number' ? p : String(p)))],
    msg: i.input === undefined && i.code === 'invalid_type' ? 'Field required' : i.message,
  }));
}

/** Largest accepted request body (bytes). */
const MAX_BODY = 1024 * 1024;

/** Creates (does not listen) the agent's HTTP server. */
export function createAgentServer(api: AgentApi): Server {
  const server = createServer((req, res) => {
    handle(api, req, res).catch((err: unknown) => {
      send(res, 500, { detail: err instanceof Error ? err.message : String(err) });
    });
  });
  server.keepAliveTimeout = 5000; // as HyperPod's uvicorn
  return server;
}

async function handle(api: AgentApi, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  const method = req.method ?? 'GET';
  if (path === '/status' && method === 'GET') return send(res, 200, api.status());
  if (path === '/healthz' && method === 'GET') return send(res, 200, { ok: true });
  const routes = ['/start', '/stop', '/update', '/shutdown', '/elastic-event', '/inprocess-restart'];
  if (!routes.includes(path ?? '')) return send(res, 404, { detail: 'Not Found' });
  if (method !== 'POST') return send(res, 405, { detail: 'Method Not Allowed' });
  const raw = await readBody(req);
  if (raw === null) return send(res, 413, { detail: `request body larger than ${MAX_BODY} bytes` });
  let json: unknown;
  if (raw.trim() !== '') {
    try {
      json = JSON.parse(raw);
    } catch (err) {
      return send(res, 422, {
        detail: [
          { type: 'json_invalid', loc: ['body', 0], msg: `JSON decode error: ${(err as Error).message}` },
        ],
      });
    }
  }
  let result: ApiResult;
  switch (path) {
    case '/start': {
      const p = StartBody.safeParse(json);
      if (!p.success) return send(res, 422, { detail: toDetail(p.error) });
      result = await api.start(p.data);
      break;
    }
    case '/update': {
      const p = UpdateBody.safeParse(json);
      if (!p.success) return send(res, 422, { detail: toDetail(p.error) });
      result = await api.update(p.data, progressOf(json));
      break;
    }
    case '/elastic-event': {
      const p = ElasticEventBody.safeParse(json);
      if (!p.success) return send(res, 422, { detail: toDetail(p.error) });
      result = await api.elasticEvent(p.data);
      break;
    }
    case '/inprocess-restart': {
      const p = InProcessRestartBody.safeParse(json);
      if (!p.success) return send(res, 422, { detail: toDetail(p.error) });
      result = await api.inProcessRestart(p.data);
      break;
    }
    case '/stop': {
      const p = StopBody.safeParse(json);
      if (!p.success) return send(res, 422, { detail: toDetail(p.error) });
      result = await api.stop(p.data);
      break;
    }
    default:
      result = await api.shutdown();
  }
  send(res, result.code, result.body);
}

/** `/update` may carry a worker's training progress (a dict), as `/start` does. */
function progressOf(json: unknown): Record<string, unknown> | undefined {
  if (json && typeof json === 'object' && 'progress' in json) {
    const p = (json as { progress: unknown }).progress;
    if (p && typeof p === 'object' && !Array.isArray(p)) return p as Record<string, unknown>;
  }
  return undefined;
}

function readBody(req: IncomingMessage): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) tooBig = true;
      else chunks.push(c);
    });
    req.on('end', () => resolve(tooBig ? null : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, code: number, body: unknown): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
