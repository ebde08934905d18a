/**
 * The `api` Lambda: API Gateway HTTP API (payload 2.0), IAM-authorized. Routes (schemas in
 * functions/README.md):
 *
 * | route | does |
 * |---|---|
 * | `POST /jobs` | submit a manifest (JSON or YAML); `Idempotency-Key` makes retries safe → 201 (200 on replay) |
 * | `GET /jobs` | list (`namespace`, `phase`, `limit`, `cursor`) |
 * | `GET /jobs/{namespace}/{name}` | the job document |
 * | `GET /jobs/{namespace}/{name}/events` | the timeline (`after` = epoch ms of the last seen event, `limit`) |
 * | `DELETE /jobs/{namespace}/{name}` | Cancel command → 202 |
 * | `POST /jobs/{namespace}/{name}/restart` | `{"level":"process"\|"job"}` → Restart command → 202 |
 * | `PUT /jobs/{namespace}/{name}/rules` | a YAML/JSON list of log rules → UpdateRules command → 200 |
 *
 * Authorization: the caller is `requestContext.authorizer.iam.userArn` (the local plane's caller, which has no
 * IAM, is `local`, with every namespace). Every route checks the caller's namespaces
 * (`TRAINKEEPER_ACCESS`, functions/shell/access.ts) before it reads anything: a namespace outside them is a
 * 403 `namespace-forbidden` whether or not the job exists (the answer depends on the caller and the path
 * only, so it reveals no job); `GET /jobs` lists only the caller's namespaces. `Idempotency-Key`s are
 * scoped per caller.
 *
 * Every error is an RFC 9457 problem document listing each `{path, message}`. Commands go through the same
 * `reconcile` as every other trigger; the handler never edits a job record itself.
 */
import { createHash } from 'node:crypto';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Handler } from 'aws-lambda';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { eventDocument, jobDocument, type ProblemIssue } from '../core/api/documents.ts';
import { MAX_NEW_RECORD_BYTES } from '../core/decide/compact.ts';
import { newJobRecord } from '../core/decide.ts';
import {
  AlreadyExistsError,
  ConcurrencyError,
  ForbiddenError,
  NotFoundError,
  TransientError,
  ValidationError,
} from '../core/errors.ts';
import { isCommandApplied, isTerminal, JOB_PHASES, type JobRecord, sameJson } from '../core/job.ts';
import type { Command } from '../core/observations.ts';
import type { JobRef } from '../core/ports.ts';
import { nameSuffixFrom, parseJobManifest } from '../core/spec/parse.ts';
import { checkPodSecurity } from '../core/spec/pod-security.ts';
import type { JobSpec, LogRule } from '../core/spec/types.ts';
import { yamlTooDeep } from '../core/spec/yaml-depth.ts';
import { type Grant, grantOf, isGranted } from './shell/access.ts';
import { isNamespaceAllowed } from './shell/config.ts';
import { lambdaHandler } from './shell/deps.ts';
import {
  type ApiGatewayV2Event,
  ApiGatewayV2Event as ApiGatewayV2EventSchema,
  type ApiResponse,
  bodyBytes,
  bodyText,
  header,
  json,
  MAX_BODY_BYTES,
  MAX_BODY_DEPTH,
  parseStrictJson,
  pathSegments,
  problem,
  queryOf,
  tooDeep,
  zodIssues,
} from './shell/http.ts';
import { describeError } from './shell/logger.ts';
import { type Deps, executeActions, type ReconcileOutcome, reconcile } from './shell/reconcile.ts';
import { oversizeIssues } from './shell/record-size.ts';
import { validateRules } from './shell/rule-input.ts';

/** How long an `Idempotency-Key` is remembered (seconds). */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;

const ListQuery = z.object({
  namespace: z.string().min(1).optional(),
  phase: z.enum(JOB_PHASES).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().min(1).optional(),
});

const EventsQuery = z.object({
  after: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

const RestartBody = z.object({ level: z.enum(['process', 'job']) }).strict();

type ParsedEvent = z.output<typeof ApiGatewayV2EventSchema>;

interface Request {
  method: string;
  segments: string[];
  event: ParsedEvent;
  principal: string;
  /** The namespaces `principal` may act on. */
  grant: Grant;
}

/** The caller of a request without an IAM principal on the local plane (which has no IAM). */
export const LOCAL_PRINCIPAL = 'local';

/** The local plane's own caller: local mode and no IAM principal in the request. */
const isLocalCaller = (deps: Deps, event: ParsedEvent): boolean =>
  deps.config.mode === 'local' && event.requestContext.authorizer?.iam?.userArn === undefined;

/** Builds the handler over the given ports. Never throws: every failure is a problem document. */
export function makeHandler(
  deps: Deps,
): (event: APIGatewayProxyEventV2 | ApiGatewayV2Event) => Promise<ApiResponse> {
  return async (raw) => {
    const parsed = ApiGatewayV2EventSchema.safeParse(raw);
    if (!parsed.success) {
      return problem(
        400,
        'bad-request',
        'Bad request',
        'not an API Gateway v2 event',
        zodIssues(parsed.error, 'event'),
      );
    }
    const event = parsed.data;
    const principal =
      event.requestContext.authorizer?.iam?.userArn ?? (deps.config.mode === 'local' ? LOCAL_PRINCIPAL : '');
    if (principal === '') {
      return problem(401, 'unauthenticated', 'Unauthenticated', 'the request carries no IAM principal');
    }
    const input = admitInput(event);
    if (!input.ok) return input.response;
    const req: Request = {
      method: event.requestContext.http.method.toUpperCase(),
      segments: input.segments,
      event,
      principal,
      // `local` only where it cannot be an IAM principal: the local plane, without an authorizer context
      grant: isLocalCaller(deps, event) ? '*' : grantOf(deps.config.access, principal),
    };
    try {
      return await route(deps, req);
    } catch (err) {
      return errorResponse(deps, err, req);
    }
  };
}

async function route(deps: Deps, req: Request): Promise<ApiResponse> {
  const [root, namespace, name, sub, ...rest] = req.segments;
  if (root !== 'jobs' || rest.length > 0) return notFound(req);
  if (namespace === undefined) {
    if (req.method === 'POST') return submitJob(deps, req);
    if (req.method === 'GET') return listJobs(deps, req);
    return methodNotAllowed(req, 'GET, POST');
  }
  if (name === undefined) return notFound(req);
  // Before any read: the answer must not depend on whether the job exists.
  if (!isGranted(req.grant, namespace)) return namespaceForbidden(req, namespace);
  const ref: JobRef = { namespace, name };
  if (sub === undefined) {
    if (req.method === 'GET') return getJob(deps, ref);
    if (req.method === 'DELETE') return command(deps, ref, { kind: 'Cancel', by: req.principal }, 202);
    return methodNotAllowed(req, 'GET, DELETE');
  }
  if (sub === 'events') {
    if (req.method === 'GET') return listEvents(deps, req, ref);
    return methodNotAllowed(req, 'GET');
  }
  if (sub === 'restart') {
    if (req.method !== 'POST') return methodNotAllowed(req, 'POST');
    const body = RestartBody.safeParse(parseBody(req, 'json'));
    if (!body.success) return invalid('invalid restart request', zodIssues(body.error, 'body'));
    return command(deps, ref, { kind: 'Restart', level: body.data.level, by: req.principal }, 202);
  }
  if (sub === 'rules') {
    if (req.method !== 'PUT') return methodNotAllowed(req, 'PUT');
    const job = await deps.store.getJob(ref);
    if (!job) return jobNotFound(ref);
    const rules = validateRules(parseBody(req, 'yaml'));
    if (!rules.ok) return invalid(`${rules.errors.length} invalid rule field(s)`, rules.errors);
    // The same bound as a new record (MAX_NEW_RECORD_BYTES): the record keeps its growth headroom, so a
    // rules update cannot fill it to the store's guard and leave no room for the job's status or a cancel.
    const oversize = oversizeIssues(withRules(job, rules.rules), MAX_NEW_RECORD_BYTES);
    if (oversize) return recordTooLarge(oversize);
    return command(deps, ref, { kind: 'UpdateRules', rules: rules.rules, by: req.principal }, 200);
  }
  return notFound(req);
}

/** POST /jobs: parse → authorize namespace → pod security → idempotency → create → act. */
async function submitJob(deps: Deps, req: Request): Promise<ApiResponse> {
  const text = bodyText(req.event);
  const contentType = header(req.event.headers, 'content-type') ?? '';
  const key = header(req.event.headers, 'idempotency-key');
  const bodyHash = createHash('sha256').update(text).digest('hex');

  let input: unknown = text;
  if (/\bjson\b/i.test(contentType)) {
    const body = parseStrictJson(text);
    if (!body.ok) return invalid('the body is not valid JSON', [body.issue]);
    input = body.value;
  }
  // The new job's uid; a manifest with only metadata.generateName gets a suffix derived from it, as the
  // API server gives a random one (so a replay of a claimed key re-derives the claimed job's name).
  let uid = deps.ids.uid();
  const parseWith = (seed: string) => parseJobManifest(input, { nameSuffix: () => nameSuffixFrom(seed) });
  const parsed = parseWith(uid);
  if (!parsed.ok) return invalid(`the manifest has ${parsed.errors.length} error(s)`, parsed.errors);
  const deep = templateTooDeep(parsed.spec);
  if (deep) return invalid('the manifest is nested too deeply', [deep]);
  let spec = parsed.spec;
  if (!isNamespaceAllowed(deps.config, spec.namespace)) {
    return problem(
      403,
      'namespace-forbidden',
      'Namespace not allowed',
      `jobs may not target namespace ${spec.namespace}`,
      [{ path: 'metadata.namespace', message: `allowed: ${deps.config.allowedNamespaces.join(', ')}` }],
    );
  }
  if (!isGranted(req.grant, spec.namespace)) return namespaceForbidden(req, spec.namespace);
  const security = checkPodSecurity(spec, deps.config.podSecurityLevel);
  if (security.length > 0) {
    return problem(
      400,
      'pod-security',
      'Pod security violation',
      `the pod templates exceed the ${deps.config.podSecurityLevel} pod security level`,
      security,
    );
  }

  let ref: JobRef = { namespace: spec.namespace, name: spec.name };
  const scopedKey = key !== undefined ? idempotencyKey(req.principal, key) : undefined;
  if (scopedKey !== undefined) {
    // Claimed BEFORE the job is created: of concurrent submissions with one key exactly one claim wins,
    // and only the job with the claimed uid can be created under it (never two jobs per key).
    const claim = await deps.idempotency.claimIdempotencyKey(
      scopedKey,
      { ref, bodyHash, uid },
      IDEMPOTENCY_TTL_SECONDS,
    );
    if (claim.bodyHash !== bodyHash) return keyReused();
    if (claim.uid !== undefined && claim.uid !== uid) {
      // The same submission sent again (a retry, or concurrently): create (or find) the claimed job.
      uid = claim.uid;
      if (claim.ref.name !== spec.name) {
        const again = parseWith(uid);
        if (!again.ok || again.spec.name !== claim.ref.name) return keyReused();
        spec = again.spec;
      }
      ref = claim.ref;
    }
  }
  const { job, actions } = newJobRecord(spec, { uid, submittedBy: req.principal, now: deps.clock.now() });
  // A new record leaves room to grow (store.ts RECORD_GROWTH_HEADROOM_BYTES), so it can always be cancelled.
  const oversize = oversizeIssues(job, MAX_NEW_RECORD_BYTES);
  if (oversize) return recordTooLarge(oversize);
  const clash = await createOrReplace(deps, job);
  if (clash !== undefined) {
    // The name is taken by a job that is not finished. The same submission (this key's job, or a retry
    // whose first attempt created the job before keys were claimed first) answers that job.
    const same =
      clash.uid === uid ||
      (scopedKey !== undefined && clash.submittedBy === req.principal && sameJson(clash.spec, spec));
    if (!same) {
      return problem(
        409,
        'job-exists',
        'Job exists',
        `job ${ref.namespace}/${ref.name} exists and is ${clash.phase}`,
        [
          {
            path: 'metadata.name',
            message: 'a job with this name exists in this namespace and is not finished',
          },
        ],
      );
    }
    if (scopedKey !== undefined && clash.uid !== uid) {
      await deps.idempotency.putIdempotencyKey(
        scopedKey,
        { ref, bodyHash, uid: clash.uid },
        IDEMPOTENCY_TTL_SECONDS,
      );
    }
    return json(200, jobDocument(clash));
  }
  let current = job;
  try {
    const outcome = await executeActions(deps, job, actions);
    if (outcome.job) current = outcome.job;
  } catch (err) {
    // The job is stored; the sweep converges what did not happen now.
    deps.log.warn('api: acting on a new job failed; the sweep will converge', {
      job: `${ref.namespace}/${ref.name}`,
      error: describeError(err),
    });
  }
  return json(201, jobDocument(current), { location: `/jobs/${ref.namespace}/${ref.name}` });
}

async function listJobs(deps: Deps, req: Request): Promise<ApiResponse> {
  const query = ListQuery.safeParse(queryOf(req.event));
  if (!query.success) return invalid('invalid query', zodIssues(query.error, 'query'));
  const q = query.data;
  if (q.namespace !== undefined && !isGranted(req.grant, q.namespace)) {
    return namespaceForbidden(req, q.namespace);
  }
  // The caller's namespaces: one is a query on it; several filter each store page (a page may then hold
  // fewer than `limit` jobs while `cursor` says there is more); none is an empty list.
  const only = q.namespace ?? (req.grant !== '*' && req.grant.size === 1 ? [...req.grant][0] : undefined);
  if (only === undefined && req.grant !== '*' && req.grant.size === 0) return json(200, { items: [] });
  const page = await deps.store.listJobs({
    ...(only ? { namespace: only } : {}),
    ...(q.phase ? { phase: q.phase } : {}),
    limit: q.limit,
    ...(q.cursor ? { cursor: q.cursor } : {}),
  });
  const grant = req.grant;
  const jobs = grant === '*' ? page.jobs : page.jobs.filter((j) => grant.has(j.namespace));
  return json(200, { items: jobs.map(jobDocument), ...(page.cursor ? { cursor: page.cursor } : {}) });
}

async function getJob(deps: Deps, ref: JobRef): Promise<ApiResponse> {
  const job = await deps.store.getJob(ref);
  return job ? json(200, jobDocument(job)) : jobNotFound(ref);
}

async function listEvents(deps: Deps, req: Request, ref: JobRef): Promise<ApiResponse> {
  const query = EventsQuery.safeParse(queryOf(req.event));
  if (!query.success) return invalid('invalid query', zodIssues(query.error, 'query'));
  const job = await deps.store.getJob(ref);
  if (!job) return jobNotFound(ref);
  const events = await deps.timeline.listEvents(ref, {
    ...(query.data.after !== undefined ? { after: query.data.after } : {}),
    limit: query.data.limit,
  });
  const last = events.at(-1);
  return json(200, { items: events.map(eventDocument), ...(last ? { after: last.at } : {}) });
}

/** A user command: one reconcile with a `Command` observation; the job document after it. */
async function command(deps: Deps, ref: JobRef, cmd: Command, status: number): Promise<ApiResponse> {
  // The answer is about THIS command, read from the record: the write that lists its id applied it.
  const id = `api#${deps.ids.uid()}`;
  let outcome: ReconcileOutcome;
  try {
    outcome = await reconcile(deps, ref, [{ type: 'Command', command: cmd, at: deps.clock.now(), id }]);
  } catch (err) {
    // A step after the command's write failed (an action, a later round's write): the command is stored
    // and the sweep converges the rest, so a 503 would only make the caller send it a second time.
    const stored = await deps.store.getJob(ref).catch(() => undefined);
    if (!stored || !isCommandApplied(stored, id)) throw err; // not applied: 503 (retry) or 500
    deps.log.warn('api: command applied; a later step failed and is left to the sweep', {
      job: `${ref.namespace}/${ref.name}`,
      command: cmd.kind,
      error: describeError(err),
    });
    return json(status, jobDocument(stored));
  }
  if (outcome.status === 'missing') return jobNotFound(ref);
  const job = outcome.job;
  if (!job) {
    // A finished job whose TTL came due in this very reconcile was deleted.
    if (cmd.kind !== 'Cancel') return jobNotFound(ref);
    return json(status, {
      metadata: { namespace: ref.namespace, name: ref.name },
      status: { phase: 'Deleted' },
    });
  }
  if (isCommandApplied(job, id)) return json(status, jobDocument(job));
  if (isTerminal(job.phase)) {
    // Cancelling a finished job is idempotent: nothing of it runs, which is what a cancel asks for.
    if (cmd.kind === 'Cancel') return json(status, jobDocument(job));
    return problem(
      409,
      'job-finished',
      'Job finished',
      `job ${ref.namespace}/${ref.name} is ${job.phase}; a finished job takes no ${cmd.kind} command`,
      [{ path: 'status.phase', message: job.phase }],
    );
  }
  // Not applied and not finished: the id fell out of the kept list under a burst of commands. Unknown
  // outcome is not success: the caller retries.
  throw new ConcurrencyError(`command on ${ref.namespace}/${ref.name} could not be confirmed; retry`);
}

/** Scoped per caller: another principal's key never replays (or blocks) this caller's submission. */
const idempotencyKey = (principal: string, key: string) => `api#${principal}#${key}`;

const keyReused = () =>
  problem(
    409,
    'idempotency-key-reused',
    'Idempotency key reused',
    'this Idempotency-Key was used with a different body',
    [{ path: 'headers.idempotency-key', message: 'already used for another submission' }],
  );

/**
 * Stores a new job's first record: created when the name is free; when a FINISHED job holds the name, its
 * record (and timeline) is replaced, conditional on it still being that finished record (name reuse).
 * Returns the job holding the name when it is not finished (nothing written).
 *
 * ```
 *   A: create ✗ exists ─ get (Cancelled v9) ─ replace if v9 ✓
 *   B: create ✗ exists ─ get (Cancelled v9) ─────────────── replace if v9 ✗ → 503, retry → get (A's, Pending) → 409
 * ```
 */
async function createOrReplace(deps: Deps, job: JobRecord): Promise<JobRecord | undefined> {
  try {
    await deps.store.createJob(job);
    return undefined;
  } catch (err) {
    if (!(err instanceof AlreadyExistsError)) throw err;
  }
  const stored = await deps.store.getJob(job);
  // Deleted in between (its TTL): the name is free again, but another submission may take it first.
  if (!stored) throw new ConcurrencyError(`job ${job.namespace}/${job.name} was deleted meanwhile; retry`);
  if (stored.uid === job.uid || !isTerminal(stored.phase)) return stored;
  await deps.store.replaceFinishedJob(job, stored.version);
  return undefined;
}

/** The body as a value: JSON when asked for (or when the content type says so), else YAML (a superset). */
function parseBody(req: Request, kind: 'json' | 'yaml'): unknown {
  const text = bodyText(req.event);
  if (text.trim() === '') return kind === 'json' ? {} : undefined;
  const contentType = header(req.event.headers, 'content-type') ?? '';
  if (kind === 'json' || /\bjson\b/i.test(contentType)) {
    const body = parseStrictJson(text);
    if (!body.ok) throw new ValidationError('the body does not parse', [body.issue]);
    return body.value;
  }
  // The YAML parser recurses per level: deep text is refused before it can overflow the stack.
  const deepText = yamlTooDeep(text, MAX_BODY_DEPTH);
  if (deepText)
    throw new ValidationError('the body is nested too deeply', [{ path: 'body', message: deepText.message }]);
  let value: unknown;
  try {
    value = parseYaml(text, { uniqueKeys: true });
  } catch (err) {
    const message =
      err instanceof RangeError ? 'nested too deeply to parse' : `not valid YAML: ${(err as Error).message}`;
    throw new ValidationError('the body does not parse', [{ path: 'body', message }]);
  }
  const deep = tooDeep(value);
  if (deep) throw new ValidationError('the body is nested too deeply', [deep]);
  return value;
}

/**
 * What is refused before routing: a body over `MAX_BODY_BYTES` (413, before it is decoded or parsed) and a
 * path that does not decode or has a segment longer than any Kubernetes name (400). Else the decoded path.
 */
function admitInput(
  event: ParsedEvent,
): { ok: true; segments: string[] } | { ok: false; response: ApiResponse } {
  const size = bodyBytes(event);
  if (size > MAX_BODY_BYTES) {
    const response = problem(
      413,
      'payload-too-large',
      'Payload too large',
      `the body is ${size} bytes; the API accepts at most ${MAX_BODY_BYTES}`,
      [{ path: 'body', message: `at most ${MAX_BODY_BYTES} bytes (a job must fit one DynamoDB item)` }],
    );
    return { ok: false, response };
  }
  const path = pathSegments(event.rawPath);
  if (!path.ok) {
    return {
      ok: false,
      response: problem(400, 'bad-request', 'Bad request', 'the path is not valid', [path.issue]),
    };
  }
  return path;
}

/**
 * The pod templates pass through the manifest parser untyped: a YAML body may nest them past
 * `MAX_BODY_DEPTH` or, through an alias, make one contain itself. Either is refused here, before anything
 * serialises or clones the spec.
 */
function templateTooDeep(spec: JobSpec): ProblemIssue | undefined {
  for (const [i, replica] of spec.replicaSpecs.entries()) {
    const path = `spec.replicaSpecs[${i}].template`;
    const issue = tooDeep(replica.template, path, MAX_BODY_DEPTH - 4);
    if (issue) return { ...issue, message: `${issue.message} (or a YAML alias makes it contain itself)` };
  }
  return undefined;
}

/** `job` as it would be with its rules replaced (to size it before the command is sent). */
const withRules = (job: JobRecord, rules: LogRule[]): JobRecord => ({
  ...job,
  spec: { ...job.spec, runPolicy: { ...job.spec.runPolicy, logMonitoringConfiguration: rules } },
});

/** 413 `record-too-large`: the issues name the record's size and its largest parts (shell/record-size.ts). */
const recordTooLarge = (issues: ProblemIssue[]) =>
  problem(413, 'record-too-large', 'Job too large', 'the job would not fit in its record', issues);

const invalid = (detail: string, errors: ProblemIssue[]) =>
  problem(400, 'invalid', 'Invalid request', detail, errors);

const namespaceForbidden = (req: Request, namespace: string) =>
  problem(
    403,
    'namespace-forbidden',
    'Namespace not allowed for this principal',
    `${req.principal} may not act on namespace ${namespace}`,
    [{ path: 'namespace', message: 'not one of the namespaces TRAINKEEPER_ACCESS gives this principal' }],
  );

const jobNotFound = (ref: JobRef) =>
  problem(404, 'job-not-found', 'Job not found', `no job ${ref.namespace}/${ref.name}`);

const notFound = (req: Request) =>
  problem(404, 'route-not-found', 'Not found', `no route for ${req.method} /${req.segments.join('/')}`);

const methodNotAllowed = (req: Request, allow: string) =>
  problem(405, 'method-not-allowed', 'Method not allowed', `${req.method} is not allowed here`, [], {
    allow,
  });

function errorResponse(deps: Deps, err: unknown, req: Request): ApiResponse {
  if (err instanceof ValidationError) return invalid(err.message, err.issues);
  if (err instanceof ForbiddenError) return problem(403, 'forbidden', 'Forbidden', err.message);
  if (err instanceof NotFoundError) return problem(404, 'not-found', 'Not found', err.message);
  if (err instanceof AlreadyExistsError) return problem(409, 'conflict', 'Conflict', err.message);
  if (err instanceof ConcurrencyError || err instanceof TransientError) {
    return problem(503, 'unavailable', 'Try again', err.message, [], { 'retry-after': '1' });
  }
  deps.log.error('api: unexpected error', {
    method: req.method,
    path: req.segments.join('/'),
    error: describeError(err),
  });
  return problem(500, 'internal', 'Internal error', 'an unexpected error occurred; it was logged');
}

/**
 * The Lambda entry point (deps from the environment, built once per instance: functions/shell/deps.ts),
 * typed as API Gateway (HTTP API, payload v2) calls it; zod still checks the event.
 */
export const handler: Handler<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2> =
  lambdaHandler(makeHandler);
