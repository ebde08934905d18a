import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { KUBE_PERMISSIONS } from '../../../adapters/kube/cluster.ts';

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}
interface Doc {
  kind: string;
  metadata: { name: string; namespace?: string };
  rules?: Rule[];
  roleRef?: { kind: string; name: string };
  subjects?: { kind: string; name: string }[];
}

const docs = parseAllDocuments(
  readFileSync(new URL('../../../deploy/kubernetes/rbac.yaml', import.meta.url), 'utf8'),
).map((d) => d.toJSON() as Doc);
const byKind = (kind: string) => docs.filter((d) => d.kind === kind);

/** `scope resource verb` triples a set of rules grants. */
const grants = (rules: Rule[], scope: string) =>
  rules.flatMap((r) => {
    expect(r.apiGroups).toEqual(['']);
    return r.resources.flatMap((res) => r.verbs.map((v) => `${scope} ${res} ${v}`));
  });

const used = KUBE_PERMISSIONS.flatMap((p) => p.verbs.map((v) => `${p.scope} ${p.resource} ${v}`)).sort();

describe('deploy/kubernetes/rbac.yaml', () => {
  it('grants exactly what the adapter uses, cluster-wide only for nodes', () => {
    const granted = [
      ...byKind('ClusterRole').flatMap((d) => grants(d.rules ?? [], 'cluster')),
      ...byKind('Role').flatMap((d) => grants(d.rules ?? [], 'namespace')),
    ].sort();
    expect(granted).toEqual(used);
  });

  it('has one ClusterRole and one Role, the Role without a namespace so `kubectl apply -n` places it', () => {
    expect(byKind('ClusterRole')).toHaveLength(1);
    expect(byKind('Role')).toHaveLength(1);
    expect(byKind('Role')[0]?.metadata.namespace).toBeUndefined();
    expect(byKind('RoleBinding')[0]?.metadata.namespace).toBeUndefined();
  });

  it.each([
    ['ClusterRoleBinding', 'ClusterRole'],
    ['RoleBinding', 'Role'],
  ])('binds the %s to the group trainkeeper-control-plane only', (binding, role) => {
    const [b] = byKind(binding);
    const [r] = byKind(role);
    expect(b?.roleRef).toMatchObject({ kind: role, name: r?.metadata.name });
    expect(b?.subjects).toEqual([
      { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'trainkeeper-control-plane' },
    ]);
  });

  it('contains nothing but the two roles and their bindings', () => {
    expect(docs.map((d) => d.kind).sort()).toEqual([
      'ClusterRole',
      'ClusterRoleBinding',
      'Role',
      'RoleBinding',
    ]);
  });
});
