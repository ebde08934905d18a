/**
 * The OpenAPI v3 documents kubectl asks for, and the server-side field validation they announce.
 *
 * kubectl (1.27+) validates a manifest before `apply`/`create` by asking `GET /openapi/v3` for the
 * group-versions, then `GET /openapi/v3/api/v1?hash=…`: when the PATCH operation of the object's kind
 * declares the `fieldValidation` query parameter, kubectl leaves validation to the server and sends
 * `fieldValidation=Strict`; otherwise it falls back to `/openapi/v2` (protobuf) and validates itself.
 * Without either document `kubectl apply` fails unless given `--validate=false`.
 *
 * So the document describes the served kinds' paths and operations, with the GVK extensions, the query
 * parameters and the patch media types the server accepts; component schemas give each kind's top level
 * and `ObjectMeta`, and `spec`/`status` as open objects. Field validation checks exactly that much:
 * unknown top-level and `metadata` fields (a typo such as `metdata` or `sepc`), as the real server's
 * strict decoding would; unknown fields deeper in `spec` are not detected locally. kubectl computes its
 * apply patches from its built-in types, as it does for any kind whose schema carries no patch strategy.
 */
import { createHash } from 'node:crypto';
import { RESOURCES, type Resource } from './store.ts';

/** `ObjectMeta` fields (k8s.io/apimachinery meta/v1). */
const OBJECT_META_FIELDS = [
  'name',
  'generateName',
  'namespace',
  'selfLink',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'labels',
  'annotations',
  'ownerReferences',
  'finalizers',
  'managedFields',
] as const;

/** Top-level fields of each served kind (core/v1 types). */
const TOP_LEVEL_FIELDS: Record<Resource, readonly string[]> = {
  pods: ['apiVersion', 'kind', 'metadata', 'spec', 'status'],
  services: ['apiVersion', 'kind', 'metadata', 'spec', 'status'],
  nodes: ['apiVersion', 'kind', 'metadata', 'spec', 'status'],
  namespaces: ['apiVersion', 'kind', 'metadata', 'spec', 'status'],
  events: [
    'apiVersion',
    'kind',
    'metadata',
    'involvedObject',
    'reason',
    'message',
    'source',
    'firstTimestamp',
    'lastTimestamp',
    'count',
    'type',
    'eventTime',
    'series',
    'action',
    'related',
    'reportingComponent',
    'reportingInstance',
  ],
};

/** What the `fieldValidation` query parameter asks for (default Strict for kubectl, Warn for others). */
export type FieldValidation = 'Ignore' | 'Warn' | 'Strict';

/** Parses `fieldValidation`: undefined when absent, `invalid` for a value the server must refuse (400). */
export function fieldValidationOf(value: string | null): FieldValidation | undefined | 'invalid' {
  if (value === null || value === '') return undefined;
  return value === 'Ignore' || value === 'Warn' || value === 'Strict' ? value : 'invalid';
}

/**
 * The unknown top-level and `metadata` fields of a request body for `resource`, as the API server's
 * strict decoder names them (`.sepc`, `.metadata.lables`). Patch directives (`$patch`, `$retainKeys`,
 * `$setElementOrder/…`, `$deleteFromPrimitiveList/…`) are not fields.
 */
export function unknownFields(resource: Resource, body: unknown): string[] {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return [];
  const isDirective = (key: string) => key.startsWith('$');
  const out: string[] = [];
  const known = new Set(TOP_LEVEL_FIELDS[resource]);
  for (const key of Object.keys(body)) if (!known.has(key) && !isDirective(key)) out.push(`.${key}`);
  const meta = (body as Record<string, unknown>).metadata;
  if (meta !== null && typeof meta === 'object' && !Array.isArray(meta)) {
    const metaKnown = new Set<string>(OBJECT_META_FIELDS);
    for (const key of Object.keys(meta)) {
      if (!metaKnown.has(key) && !isDirective(key)) out.push(`.metadata.${key}`);
    }
  }
  return out;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const definitionName = (kind: string) => `io.k8s.api.core.v1.${kind}`;
const gvk = (kind: string) => [{ group: '', version: 'v1', kind }];

const queryParam = (name: string, description: string, type = 'string') => ({
  name,
  in: 'query',
  description,
  schema: { type, uniqueItems: true },
});
const WRITE_PARAMS = [
  queryParam('dryRun', 'When present, indicates that modifications should not be persisted.'),
  queryParam('fieldManager', 'A name associated with the actor or entity that is making these changes.'),
  queryParam(
    'fieldValidation',
    'Ignore, Warn or Strict: what to do with unknown fields in the body (checked at the top level and in metadata).',
  ),
];
const PATCH_MEDIA_TYPES = [
  'application/json-patch+json',
  'application/merge-patch+json',
  'application/strategic-merge-patch+json',
];

function operation(
  action: string,
  kind: string,
  plural: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    tags: ['core_v1'],
    operationId: `${action}CoreV1${kind}`,
    description: `${action} ${plural}`,
    responses: {
      '200': { description: 'OK', content: { 'application/json': { schema: ref(definitionName(kind)) } } },
      '401': { description: 'Unauthorized' },
    },
    'x-kubernetes-action': action === 'replace' ? 'put' : action === 'read' ? 'get' : action,
    'x-kubernetes-group-version-kind': gvk(kind)[0],
    ...extra,
  };
}

function pathsFor(resource: Resource): Record<string, unknown> {
  const { kind, namespaced } = RESOURCES[resource];
  const base = namespaced ? `/api/v1/namespaces/{namespace}/${resource}` : `/api/v1/${resource}`;
  const pathParams = [
    ...(namespaced ? [{ name: 'namespace', in: 'path', required: true, schema: { type: 'string' } }] : []),
  ];
  const nameParam = { name: 'name', in: 'path', required: true, schema: { type: 'string' } };
  const body = { content: { '*/*': { schema: ref(definitionName(kind)) } }, required: true };
  const patchBody = {
    content: Object.fromEntries(PATCH_MEDIA_TYPES.map((t) => [t, { schema: { type: 'object' } }])),
    required: true,
  };
  return {
    [base]: {
      parameters: pathParams,
      get: operation('list', kind, resource),
      post: operation('create', kind, resource, { parameters: WRITE_PARAMS, requestBody: body }),
    },
    [`${base}/{name}`]: {
      parameters: [...pathParams, nameParam],
      get: operation('read', kind, resource),
      put: operation('replace', kind, resource, { parameters: WRITE_PARAMS, requestBody: body }),
      patch: operation('patch', kind, resource, { parameters: WRITE_PARAMS, requestBody: patchBody }),
      delete: operation('delete', kind, resource),
    },
  };
}

function schemas(): Record<string, unknown> {
  const out: Record<string, unknown> = {
    'io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta': {
      type: 'object',
      description: 'Standard object metadata.',
      properties: Object.fromEntries(
        OBJECT_META_FIELDS.map((f) => [
          f,
          f === 'labels' || f === 'annotations'
            ? { type: 'object', additionalProperties: { type: 'string', default: '' } }
            : f === 'finalizers'
              ? { type: 'array', items: { type: 'string' } }
              : f === 'ownerReferences' || f === 'managedFields'
                ? { type: 'array', items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } }
                : f === 'generation' || f === 'deletionGracePeriodSeconds'
                  ? { type: 'integer', format: 'int64' }
                  : { type: 'string' },
        ]),
      ),
    },
  };
  for (const [resource, { kind }] of Object.entries(RESOURCES) as [Resource, { kind: string }][]) {
    const open = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
    out[definitionName(kind)] = {
      type: 'object',
      description: `${kind} (core/v1). Fields below the top level are not described locally.`,
      properties: Object.fromEntries(
        TOP_LEVEL_FIELDS[resource].map((f) => [
          f,
          f === 'metadata'
            ? { allOf: [ref('io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta')], default: {} }
            : f === 'apiVersion' || f === 'kind'
              ? { type: 'string' }
              : open,
        ]),
      ),
    };
  }
  return out;
}

/** `GET /openapi/v3/api/v1`: the core/v1 document (built once; it does not change). */
export const CORE_V1_OPENAPI: string = JSON.stringify({
  openapi: '3.0.0',
  info: { title: 'Kubernetes (TrainKeeper local API server)', version: 'v1.31.0' },
  paths: Object.assign({}, ...(Object.keys(RESOURCES) as Resource[]).map(pathsFor)),
  components: { schemas: schemas() },
});

/** `GET /openapi/v3`: where each group-version's document is, with the hash kubectl caches by. */
export const OPENAPI_V3_ROOT: string = JSON.stringify({
  paths: {
    'api/v1': {
      serverRelativeURL: `/openapi/v3/api/v1?hash=${createHash('sha512').update(CORE_V1_OPENAPI).digest('hex').toUpperCase()}`,
    },
  },
});
