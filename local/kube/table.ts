/**
 * Server-side printing: the `meta.k8s.io/v1` Table kubectl asks for (`Accept: application/json;as=Table;…`)
 * when it prints human output (`kubectl get pods`, `-o wide`). Columns follow kubectl's for pods and nodes;
 * other kinds get Name and Age. Only kubectl's human output uses this; `-o json` and client-node get objects.
 */
import type { KubeObject, Resource } from './store.ts';
import type { Condition } from './types.ts';

/** True when the Accept header asks for a Table (kubectl's human output). */
export const wantsTable = (accept: string | undefined): boolean => /as=Table/.test(accept ?? '');

const column = (name: string, type: string, priority = 0, format = '') => ({
  name,
  type,
  format,
  description: '',
  priority,
});

/** "5s", "3m", "2h", "4d" as kubectl prints ages. */
function age(from: string | undefined, now: number): string {
  if (!from) return '<unknown>';
  const s = Math.max(0, Math.floor((now - Date.parse(from)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

type ContainerStatus = {
  ready?: boolean;
  restartCount?: number;
  state?: { waiting?: { reason?: string }; terminated?: { reason?: string } };
};

function podRow(pod: KubeObject, now: number): unknown[] {
  const statuses = (pod.status?.containerStatuses ?? []) as ContainerStatus[];
  const containers = ((pod.spec?.containers ?? []) as unknown[]).length;
  const ready = statuses.filter((c) => c.ready).length;
  const restarts = statuses.reduce((n, c) => n + (c.restartCount ?? 0), 0);
  const first = statuses[0]?.state;
  const status = pod.metadata.deletionTimestamp
    ? 'Terminating'
    : ((pod.status?.reason as string | undefined) ??
      first?.waiting?.reason ??
      first?.terminated?.reason ??
      (pod.status?.phase as string | undefined) ??
      'Unknown');
  return [
    pod.metadata.name,
    `${ready}/${containers}`,
    status,
    restarts,
    age(pod.metadata.creationTimestamp, now),
    (pod.status?.podIP as string | undefined) ?? '<none>',
    (pod.spec?.nodeName as string | undefined) ?? '<none>',
  ];
}

function nodeRow(node: KubeObject, now: number): unknown[] {
  const ready = ((node.status?.conditions ?? []) as Condition[]).find((c) => c.type === 'Ready');
  const status = [ready?.status === 'True' ? 'Ready' : 'NotReady'];
  if ((node.spec as { unschedulable?: boolean } | undefined)?.unschedulable)
    status.push('SchedulingDisabled');
  const info = (node.status?.nodeInfo ?? {}) as { kubeletVersion?: string };
  const ip = ((node.status?.addresses ?? []) as { type: string; address: string }[]).find(
    (a) => a.type === 'InternalIP',
  );
  return [
    node.metadata.name,
    status.join(','),
    '<none>',
    age(node.metadata.creationTimestamp, now),
    info.kubeletVersion ?? '',
    ip?.address ?? '<none>',
  ];
}

/** Renders objects as a Table; each row carries its object so kubectl can show namespaces and labels. */
export function toTable(
  resource: Resource,
  objects: KubeObject[],
  resourceVersion: string,
  now: number,
): unknown {
  const columns =
    resource === 'pods'
      ? [
          column('Name', 'string', 0, 'name'),
          column('Ready', 'string'),
          column('Status', 'string'),
          column('Restarts', 'integer'),
          column('Age', 'string'),
          column('IP', 'string', 1),
          column('Node', 'string', 1),
        ]
      : resource === 'nodes'
        ? [
            column('Name', 'string', 0, 'name'),
            column('Status', 'string'),
            column('Roles', 'string'),
            column('Age', 'string'),
            column('Version', 'string'),
            column('Internal-IP', 'string', 1),
          ]
        : [column('Name', 'string', 0, 'name'), column('Age', 'string')];
  const rows = objects.map((obj) => ({
    cells:
      resource === 'pods'
        ? podRow(obj, now)
        : resource === 'nodes'
          ? nodeRow(obj, now)
          : [obj.metadata.name, age(obj.metadata.creationTimestamp, now)],
    object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata },
  }));
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion },
    columnDefinitions: columns,
    rows,
  };
}
