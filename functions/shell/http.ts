/**
 * HTTP plumbing for the `api` handler: the API Gateway HTTP API (payload format 2.0) event, responses, and
 * RFC 9457 problem documents. Kept apart from the routes so the routes read as parse → load → decide.
 */
import { z } from 'zod';
import { PROBLEM_BASE, type Problem, type ProblemIssue } from '../../core/api/documents.ts';

/** The parts of an API Gateway v2 event the API uses (the full event has more; extra keys are ignored). */
export const ApiGatewayV2Event = z.object({
  version: z.literal('2.0').optional(),
  routeKey: z.string().optional(),
  rawPath: z.string(),
  rawQueryString: z.string().default(''),
  headers: z.record(z.string(), z.string()).default({}),
  queryStringParameters: z.record(z.string(), z.string()).optional(),
  body: z.string().optional(),
  isBase64Encoded: z.boolean().default(false),
  requestContext: z.object({
    http: z.object({ method: z.string(), path: z.string().optional() }),
    requestId: z.string().optional(),
    authorizer: z
      .object({ iam: z.object({ userArn: z.string().optional() }).partial().optional() })
      .partial()
      .optional(),
  }),
});
export type ApiGatewayV2Event = z.input<typeof ApiGatewayV2Event>;

/** The structured response API Gateway v2 expects. */
export interface ApiResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

/** A JSON response. */
export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): ApiResponse {
  return {
    statusCode,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  };
}

/** An `application/problem+json` response; `type` is a slug under `PROBLEM_BASE`. */
export function problem(
  status: number,
  slug: string,
  title: string,
  detail: string,
  errors: ProblemIssue[] = [],
  headers: Record<string, string> = {},
): ApiResponse {
  const doc: Problem = { type: `${PROBLEM_BASE}${slug}`, title, status, detail, errors };
  return {
    statusCode: status,
    headers: { 'content-type': 'application/problem+json', ...headers },
    body: JSON.stringify(doc),
  };
}

/** Header lookup, case-insensitive (API Gateway lower-cases them; local servers may not). */
export function header(headers: Record<string, string>, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === lower) return value;
  return undefined;
}

/** Query parameters: `queryStringParameters` when given, else parsed from `rawQueryString`. */
export function queryOf(event: z.output<typeof ApiGatewayV2Event>): Record<string, string> {
  if (event.queryStringParameters) return event.queryStringParameters;
  return Object.fromEntries(new URLSearchParams(event.rawQueryString));
}

/** The request body as text (API Gateway base64-encodes binary bodies). */
export function bodyText(event: z.output<typeof ApiGatewayV2Event>): string {
  if (event.body === undefined) return '';
  return event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
}

/**
 * The largest request body the API reads (1 MiB), far below API Gateway's 10 MB: a manifest or a rule list
 * ends up in one DynamoDB item (400 KB), so a body beyond this can never be stored. Checked before the
 * body is decoded or parsed; a larger one is a 413 `payload-too-large`.
 */
export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * The deepest nesting of objects and lists a JSON or YAML body may have (a pod template needs about 15).
 * Checked before any recursive code (validation, cloning, serialising) walks the value.
 */
export const MAX_BODY_DEPTH = 100;

/** The body's size in bytes, decoded: without decoding a base64 body (its length says it). */
export function bodyBytes(event: z.output<typeof ApiGatewayV2Event>): number {
  const body = event.body ?? '';
  if (!event.isBase64Encoded) return Buffer.byteLength(body, 'utf8');
  const padding = body.endsWith('==') ? 2 : body.endsWith('=') ? 1 : 0;
  return Math.floor((body.length * 3) / 4) - padding;
}

/** The longest path segment: the longest Kubernetes name (DNS-1123 subdomain). */
export const MAX_SEGMENT_LENGTH = 253;

/**
 * The path's segments, percent-decoded: an issue (path `path`) instead of a `URIError` for bad
 * percent-encoding, and for a segment longer than any Kubernetes name (`MAX_SEGMENT_LENGTH`), so no
 * over-long key reaches the store.
 */
export function pathSegments(
  rawPath: string,
): { ok: true; segments: string[] } | { ok: false; issue: ProblemIssue } {
  const segments: string[] = [];
  for (const [i, raw] of rawPath
    .split('/')
    .filter((s) => s !== '')
    .entries()) {
    let segment: string;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      return { ok: false, issue: { path: `path[${i}]`, message: 'bad percent-encoding' } };
    }
    if (segment.length > MAX_SEGMENT_LENGTH) {
      return {
        ok: false,
        issue: {
          path: `path[${i}]`,
          message: `${segment.length} characters: longer than any Kubernetes name (at most ${MAX_SEGMENT_LENGTH})`,
        },
      };
    }
    segments.push(segment);
  }
  return { ok: true, segments };
}

/**
 * A JSON body as a value, stricter than `JSON.parse`: a key repeated in one object (which `JSON.parse`
 * silently resolves to the last one, while the YAML parser refuses it) and nesting deeper than `maxDepth`
 * are issues with the path of the offending key or value (under `prefix`). Duplicates and depth are found
 * by one iterative scan of the text after `JSON.parse` accepted it, so nothing recurses on the input.
 */
export function parseStrictJson(
  text: string,
  prefix = 'body',
  maxDepth = MAX_BODY_DEPTH,
): { ok: true; value: unknown } | { ok: false; issue: ProblemIssue } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, issue: { path: prefix, message: `not valid JSON: ${(err as Error).message}` } };
  }
  const issue = scanJson(text, prefix, maxDepth);
  return issue ? { ok: false, issue } : { ok: true, value };
}

interface JsonFrame {
  object: boolean;
  path: string;
  keys: Set<string>;
  /** The current key (objects) while its value is read. */
  key: string;
  /** The current item index (lists). */
  index: number;
  expectKey: boolean;
}

/** Duplicate keys and excess depth in text that is valid JSON (see `parseStrictJson`). */
function scanJson(text: string, prefix: string, maxDepth: number): ProblemIssue | undefined {
  const stack: JsonFrame[] = [];
  const childPath = (): string => {
    const top = stack.at(-1);
    if (!top) return prefix;
    return top.object ? keyPath(top.path, top.key) : `${top.path}[${top.index}]`;
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      let j = i + 1;
      let escaped = false;
      while (text[j] !== '"') {
        if (text[j] === '\\') {
          escaped = true;
          j++;
        }
        j++;
      }
      const top = stack.at(-1);
      if (top?.object && top.expectKey) {
        const key = escaped ? (JSON.parse(text.slice(i, j + 1)) as string) : text.slice(i + 1, j);
        if (top.keys.has(key)) {
          return {
            path: keyPath(top.path, key),
            message: 'duplicate key (a key may appear once per object)',
          };
        }
        top.keys.add(key);
        top.key = key;
        top.expectKey = false;
      }
      i = j;
    } else if (ch === '{' || ch === '[') {
      const path = childPath();
      if (stack.length >= maxDepth) {
        return { path, message: `nested deeper than ${maxDepth} levels` };
      }
      stack.push({ object: ch === '{', path, keys: new Set(), key: '', index: 0, expectKey: ch === '{' });
    } else if (ch === '}' || ch === ']') {
      stack.pop();
    } else if (ch === ',') {
      const top = stack.at(-1);
      if (top?.object) top.expectKey = true;
      else if (top) top.index++;
    }
  }
  return undefined;
}

/**
 * The first path in `value` deeper than `maxDepth` objects/lists (under `prefix`), found iteratively: for
 * values that did not come through `parseStrictJson` (YAML bodies).
 */
export function tooDeep(
  value: unknown,
  prefix = 'body',
  maxDepth = MAX_BODY_DEPTH,
): ProblemIssue | undefined {
  const stack: { value: unknown; path: string; depth: number }[] = [{ value, path: prefix, depth: 0 }];
  // YAML aliases share one node between places: walk it again only where it sits deeper than before.
  const seenAt = new Map<object, number>();
  while (stack.length > 0) {
    const { value: v, path, depth } = stack.pop() as { value: unknown; path: string; depth: number };
    if (v === null || typeof v !== 'object' || (seenAt.get(v) ?? -1) >= depth) continue;
    if (depth >= maxDepth) return { path, message: `nested deeper than ${maxDepth} levels` };
    seenAt.set(v, depth);
    const entries: [string, unknown][] = Array.isArray(v)
      ? v.map((item, i) => [`${path}[${i}]`, item])
      : Object.entries(v).map(([k, item]) => [keyPath(path, k), item]);
    for (const [p, item] of entries) stack.push({ value: item, path: p, depth: depth + 1 });
  }
  return undefined;
}

const keyPath = (base: string, key: string): string =>
  /^[A-Za-z_$][\w$-]*$/.test(key)
    ? base === ''
      ? key
      : `${base}.${key}`
    : `${base}[${JSON.stringify(key)}]`;

/** Zod issues as `{path, message}` with dotted paths under `prefix` (`[i]` for list items). */
export function zodIssues(error: z.ZodError, prefix = ''): ProblemIssue[] {
  return error.issues.map((issue) => ({ path: joinPath(prefix, issue.path), message: issue.message }));
}

function joinPath(prefix: string, path: readonly PropertyKey[]): string {
  let out = prefix;
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}
