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

export type { Problem, ProblemIssue };

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
