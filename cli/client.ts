/**
 * The CLI's client for the TrainKeeper HTTP API (routes and documents in functions/README.md): endpoint
 * resolution, SigV4 signing for API Gateway endpoints (the adapters' signer, adapters/aws/sigv4.ts), and
 * problem documents turned into errors that say what went wrong with field paths.
 *
 * Invariants: loopback/local endpoints are never signed (the local plane has no IAM); AWS endpoints
 * (`*.execute-api.<region>.amazonaws.com`) are always signed (service `execute-api`); every failure is a
 * `TrainKeeperError` subclass, so `action` (cli/io.ts) prints it as one clear line plus its field issues.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pRetry from 'p-retry';
import type { Signer } from '../adapters/aws/sigv4.ts';
import type { EventDocument, JobDocument, Problem } from '../core/api/documents.ts';
import { TrainKeeperError, ValidationError } from '../core/errors.ts';
import type { JobRef } from '../core/ports.ts';

/** What one API request carries besides its method and path. */
interface RequestOptions {
  body?: string;
  headers?: Record<string, string>;
  query?: Record<string, string | number | undefined>;
}

/** The message when no endpoint can be found (tests and docs quote it). */
export const NO_ENDPOINT_MESSAGE =
  'no endpoint configured: pass --endpoint, set TRAINKEEPER_ENDPOINT or deploy with sst';

/**
 * The API answered with an error status. `problem` is the parsed problem document (when the body was one);
 * `issues` are its field errors, which `action` prints as `path: message` lines. Not retryable: the CLI
 * never retries a request the server rejected.
 */
export class ApiError extends ValidationError {
  constructor(
    readonly status: number,
    readonly problem: Problem | undefined,
    message: string,
  ) {
    super(message, problem?.errors ?? []);
  }
}

/** The endpoint could not be reached at all (connection refused, DNS, TLS), or none is configured. */
export class EndpointError extends TrainKeeperError {
  readonly retryable = false;
}

/** Where the endpoint is looked up, in order. `cwd` holds `.sst/outputs.json` after `sst deploy`. */
export interface EndpointSources {
  endpoint?: string | undefined;
  env?: Record<string, string | undefined>;
  cwd?: string;
}

/**
 * The API's base URL: `--endpoint`, else `TRAINKEEPER_ENDPOINT`, else the deployed stage's `ApiUrl`
 * (or `apiUrl`) from `.sst/outputs.json` in `cwd`. Throws `EndpointError(NO_ENDPOINT_MESSAGE)` when none;
 * `ValidationError` when the one found is not an http(s) URL. The result never ends with `/`.
 */
export function resolveEndpoint(sources: EndpointSources = {}): string {
  const env = sources.env ?? process.env;
  const fromSst = () => {
    const file = join(sources.cwd ?? process.cwd(), '.sst', 'outputs.json');
    if (!existsSync(file)) return undefined;
    let outputs: Record<string, unknown>;
    try {
      outputs = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new ValidationError(`${file} is not JSON`, [{ path: file, message: (err as Error).message }]);
    }
    const url = outputs.ApiUrl ?? outputs.apiUrl;
    return typeof url === 'string' && url !== '' ? url : undefined;
  };
  const raw = sources.endpoint || env.TRAINKEEPER_ENDPOINT || fromSst();
  if (!raw) throw new EndpointError(NO_ENDPOINT_MESSAGE);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ValidationError(`invalid endpoint ${raw}`, [{ path: 'endpoint', message: 'not a URL' }]);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ValidationError(`invalid endpoint ${raw}`, [
      { path: 'endpoint', message: 'must be an http:// or https:// URL' },
    ]);
  }
  return raw.replace(/\/+$/, '');
}

const EXECUTE_API_HOST = /^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/i;

/** True for API Gateway hosts (`<id>.execute-api.<region>.amazonaws.com`): those requests are SigV4-signed. */
export function isAwsEndpoint(endpoint: string): boolean {
  return EXECUTE_API_HOST.test(new URL(endpoint).hostname);
}

/** The region in an API Gateway host name, if it is one. */
export function regionOfEndpoint(endpoint: string): string | undefined {
  return EXECUTE_API_HOST.exec(new URL(endpoint).hostname)?.[1];
}

/** AWS credentials as the signer takes them. */
export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** How requests reach the API: endpoint plus, for AWS endpoints, the credentials and region to sign with. */
export interface ClientOptions {
  endpoint: string;
  /** Named profile for the default credential chain (`--profile`). */
  profile?: string | undefined;
  /** Signing region (`--region`); default: the region in the endpoint's host, else `AWS_REGION`. */
  region?: string | undefined;
  /** Credentials to sign with; default: `fromNodeProviderChain({ profile })`, loaded on first use. */
  credentials?: () => Promise<Credentials>;
  /** Retries of a 503/429 answer. Default 5. */
  retries?: number;
  /** How long one request may take before it fails with `EndpointError`. Default 60 s. */
  timeoutMs?: number;
}

/** A response whose status was 2xx: status code and the parsed JSON body. */
export interface ApiResponse<T> {
  status: number;
  body: T;
  headers: Headers;
}

/** A page of `GET /jobs`. */
export interface JobList {
  items: JobDocument[];
  cursor?: string;
}

/** A page of `GET /jobs/{ns}/{name}/events`. */
export interface EventList {
  items: EventDocument[];
  after?: number;
}

/** A `{status: {phase: "Deleted"}}` answer to a cancel when the record went at once. */
export type CancelResult = JobDocument | { metadata: JobRef; status: { phase: 'Deleted' } };

const enc = encodeURIComponent;
const jobPath = (ref: JobRef) => `/jobs/${enc(ref.namespace)}/${enc(ref.name)}`;

/**
 * The API client. One method per route; each resolves with the parsed document of a 2xx answer and
 * rejects with `ApiError` (the problem document) or `EndpointError` (unreachable).
 */
export class ApiClient {
  readonly endpoint: string;
  private readonly options: ClientOptions;
  private credentials: Promise<Credentials> | undefined;
  private signer: Promise<Signer> | undefined;

  constructor(options: ClientOptions) {
    this.endpoint = options.endpoint.replace(/\/+$/, '');
    this.options = options;
  }

  /** POST /jobs: the manifest text as is; `contentType` JSON or YAML. 201 created, 200 replayed. */
  submit(manifest: string, contentType: string, idempotencyKey?: string): Promise<ApiResponse<JobDocument>> {
    return this.request<JobDocument>('POST', '/jobs', {
      body: manifest,
      headers: {
        'content-type': contentType,
        ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
      },
    });
  }

  /** GET /jobs, one page. */
  async list(query: {
    namespace?: string;
    phase?: string;
    limit?: number;
    cursor?: string;
  }): Promise<JobList> {
    return (await this.request<JobList>('GET', '/jobs', { query })).body;
  }

  /** Every page of GET /jobs. */
  async listAll(query: { namespace?: string; phase?: string }): Promise<JobDocument[]> {
    const items: JobDocument[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.list({ ...query, limit: 500, ...(cursor ? { cursor } : {}) });
      items.push(...page.items);
      cursor = page.cursor;
    } while (cursor);
    return items;
  }

  /** GET /jobs/{ns}/{name}. */
  async get(ref: JobRef): Promise<JobDocument> {
    return (await this.request<JobDocument>('GET', jobPath(ref))).body;
  }

  /** GET /jobs/{ns}/{name}/events, one page after `after` (epoch ms). */
  async events(ref: JobRef, query: { after?: number; limit?: number } = {}): Promise<EventList> {
    return (await this.request<EventList>('GET', `${jobPath(ref)}/events`, { query })).body;
  }

  /** Every event after `after`, all pages. */
  async allEvents(ref: JobRef, after?: number): Promise<EventDocument[]> {
    const items: EventDocument[] = [];
    let cursor = after;
    for (;;) {
      const page = await this.events(ref, {
        ...(cursor !== undefined ? { after: cursor } : {}),
        limit: 1000,
      });
      items.push(...page.items);
      if (page.items.length < 1000 || page.after === undefined) return items;
      cursor = page.after;
    }
  }

  /** DELETE /jobs/{ns}/{name}: the Cancel command. */
  async cancel(ref: JobRef): Promise<CancelResult> {
    return (await this.request<CancelResult>('DELETE', jobPath(ref))).body;
  }

  /** POST /jobs/{ns}/{name}/restart. */
  async restart(ref: JobRef, level: 'process' | 'job'): Promise<JobDocument> {
    return (
      await this.request<JobDocument>('POST', `${jobPath(ref)}/restart`, {
        body: JSON.stringify({ level }),
        headers: { 'content-type': 'application/json' },
      })
    ).body;
  }

  /** PUT /jobs/{ns}/{name}/rules with a JSON list of rules. */
  async setRules(ref: JobRef, rules: unknown[]): Promise<JobDocument> {
    return (
      await this.request<JobDocument>('PUT', `${jobPath(ref)}/rules`, {
        body: JSON.stringify(rules),
        headers: { 'content-type': 'application/json' },
      })
    ).body;
  }

  /**
   * One request; signs it for AWS endpoints; maps failures to `ApiError` / `EndpointError`. A 503 or 429
   * (the API's answer to a lost write race or throttling: nothing was applied) is retried up to
   * `retries` times with jittered backoff from 250 ms, so a retried command is safe.
   */
  request<T>(method: string, path: string, init: RequestOptions = {}): Promise<ApiResponse<T>> {
    return pRetry(() => this.requestOnce<T>(method, path, init), {
      retries: this.options.retries ?? 5,
      minTimeout: 250,
      maxTimeout: 4000,
      randomize: true,
      shouldRetry: ({ error }) => error instanceof ApiError && (error.status === 503 || error.status === 429),
    });
  }

  private async requestOnce<T>(
    method: string,
    path: string,
    init: RequestOptions = {},
  ): Promise<ApiResponse<T>> {
    const url = new URL(`${this.endpoint}${path}`);
    for (const [key, value] of Object.entries(init.query ?? {})) {
      if (value !== undefined && value !== '') url.searchParams.set(key, String(value));
    }
    let headers: Record<string, string> = { accept: 'application/json', ...init.headers };
    if (isAwsEndpoint(this.endpoint)) {
      const sign = await this.loadSigner();
      headers = await sign({
        method,
        url: url.toString(),
        headers,
        ...(init.body !== undefined ? { body: init.body } : {}),
      });
      // fetch sets host itself and refuses to be told.
      delete headers.host;
    }
    let res: Response;
    const timeoutMs = this.options.timeoutMs ?? 60_000;
    const signal = AbortSignal.timeout(timeoutMs);
    let text: string;
    try {
      res = await fetch(url, {
        method,
        headers,
        signal,
        ...(init.body !== undefined ? { body: init.body } : {}),
      });
      text = await res.text();
    } catch (err) {
      if ((err as Error)?.name === 'TimeoutError') {
        throw new EndpointError(`${this.endpoint} did not answer within ${timeoutMs / 1000} s`, {
          cause: err,
        });
      }
      throw new EndpointError(`cannot reach ${this.endpoint}: ${networkReason(err)}`, { cause: err });
    }
    if (!res.ok) throw apiError(res, text);
    let body: T;
    try {
      body = (text === '' ? undefined : JSON.parse(text)) as T;
    } catch {
      throw new ApiError(res.status, undefined, `${method} ${path}: the answer is not JSON (${res.status})`);
    }
    return { status: res.status, body, headers: res.headers };
  }

  /**
   * The SigV4 signer (service `execute-api`) for this endpoint's region: `--region`, else the region in the
   * host, else `AWS_REGION`. Loaded on first use: local endpoints never sign, and every command start pays
   * for what it imports.
   */
  private loadSigner(): Promise<Signer> {
    this.signer ??= (async () => {
      const region = this.options.region ?? regionOfEndpoint(this.endpoint) ?? process.env.AWS_REGION;
      if (!region) throw new EndpointError(`cannot tell the region of ${this.endpoint}: pass --region`);
      const { makeSigner } = await import('../adapters/aws/sigv4.ts');
      return makeSigner({ region, service: 'execute-api', credentials: () => this.loadCredentials() });
    })();
    return this.signer;
  }

  private loadCredentials(): Promise<Credentials> {
    this.credentials ??= (async () => {
      if (this.options.credentials) return this.options.credentials();
      const { fromNodeProviderChain } = await import('@aws-sdk/credential-providers');
      try {
        return await fromNodeProviderChain(this.options.profile ? { profile: this.options.profile } : {})();
      } catch (err) {
        throw new EndpointError(
          `no AWS credentials to sign requests to ${this.endpoint}: ${(err as Error).message}`,
          { cause: err },
        );
      }
    })();
    return this.credentials;
  }
}

/** Connection-level failures in words a person knows (`connection refused`, `host not found`). */
function networkReason(err: unknown): string {
  const cause = (err as { cause?: NodeJS.ErrnoException & { errors?: NodeJS.ErrnoException[] } })?.cause;
  const code = cause?.code ?? cause?.errors?.[0]?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host not found';
    case 'ECONNRESET':
      return 'connection reset';
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'connection timed out';
    default:
      return cause?.message ?? (err as Error)?.message ?? String(err);
  }
}

function apiError(res: Response, text: string): ApiError {
  let problem: Problem | undefined;
  try {
    const parsed = JSON.parse(text) as Partial<Problem>;
    if (parsed && typeof parsed === 'object' && typeof parsed.detail === 'string') {
      problem = {
        type: String(parsed.type ?? ''),
        title: String(parsed.title ?? ''),
        status: Number(parsed.status ?? res.status),
        detail: parsed.detail,
        errors: Array.isArray(parsed.errors) ? parsed.errors : [],
      };
    }
  } catch {
    // not JSON: described from the status below
  }
  if (problem) return new ApiError(res.status, problem, problem.detail);
  const snippet = text.trim().slice(0, 200);
  return new ApiError(
    res.status,
    undefined,
    `the API answered ${res.status} ${res.statusText}${snippet ? `: ${snippet}` : ''}`,
  );
}
