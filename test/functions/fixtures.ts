/**
 * Raw trigger events for the handler tests, built from the recorded shapes in test/fixtures/events/
 * (API Gateway v2, EventBridge) and, for CloudWatch Logs, with the real gzip + base64 encoding of a
 * subscription payload whose messages are Container Insights JSON records.
 */
import { readFileSync } from 'node:fs';
import type { ApiGatewayV2Event } from '../../functions/shell/http.ts';
import { encodeSubscriptionPayload } from '../../local/shipper.ts';

const dir = new URL('../fixtures/', import.meta.url);

/** A fixture file parsed as JSON (a fresh copy every call). */
export const fixtureJson = <T = Record<string, unknown>>(path: string): T =>
  JSON.parse(readFileSync(new URL(path, dir), 'utf8')) as T;

/** A fixture file as text. */
export const fixtureText = (path: string): string => readFileSync(new URL(path, dir), 'utf8');

/** An API Gateway v2 event for `method path` (query string allowed), from the recorded POST /jobs event. */
export function apiEvent(
  method: string,
  path: string,
  options: { body?: string; headers?: Record<string, string>; principal?: string | null } = {},
): ApiGatewayV2Event {
  const event = fixtureJson<ApiGatewayV2Event & Record<string, unknown>>(
    'events/api-gateway-v2-post-jobs.json',
  );
  const [rawPath, rawQueryString = ''] = path.split('?') as [string, string?];
  event.routeKey = '$default';
  event.rawPath = rawPath;
  event.rawQueryString = rawQueryString;
  event.requestContext.http.method = method;
  event.requestContext.http.path = rawPath;
  event.body = options.body ?? '';
  event.headers = {
    ...event.headers,
    'content-length': String((options.body ?? '').length),
    ...options.headers,
  };
  if (options.principal === null) delete event.requestContext.authorizer;
  else if (options.principal !== undefined)
    event.requestContext.authorizer = { iam: { userArn: options.principal } };
  return event;
}

/** A minimal manifest (test/fixtures/manifests/minimal.json) renamed into `namespace/name`. */
export function manifest(
  name: string,
  namespace: string,
  mutate?: (m: Record<string, unknown>) => void,
): string {
  const m = fixtureJson<Record<string, unknown> & { metadata: Record<string, unknown> }>(
    'manifests/minimal.json',
  );
  m.metadata = { name, namespace };
  mutate?.(m);
  return JSON.stringify(m);
}

let eventSeq = 0;

/**
 * One CloudWatch Logs subscription event carrying `lines` of `pod`'s container (default `trainer`, the
 * agent's container in manifests/minimal.json) as the stock Container Insights add-on ships them: Fluent
 * Bit records with Labels Off, in the add-on's log stream.
 */
export function logsEvent(
  pod: string,
  lines: { text: string; timestamp: number }[],
  options: { namespace?: string; container?: string; node?: string; logStream?: string } = {},
) {
  const namespace = options.namespace ?? 'team-a';
  const container = options.container ?? 'trainer';
  const logStream =
    options.logStream ??
    `${options.node ?? 'node-a'}-application.var.log.containers.${pod}_${namespace}_${container}-${'0'.repeat(64)}.log`;
  return encodeSubscriptionPayload(
    '/aws/containerinsights/test/application',
    logStream,
    lines.map((l) => ({
      id: `${l.timestamp}${String(eventSeq++).padStart(12, '0')}`,
      timestamp: l.timestamp,
      message: JSON.stringify({
        log: `${l.text}\n`,
        stream: 'stdout',
        time: new Date(l.timestamp).toISOString(),
        kubernetes: {
          pod_name: pod,
          namespace_name: namespace,
          container_name: container,
          host: options.node ?? 'node-a',
        },
      }),
    })),
  );
}
