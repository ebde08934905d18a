/**
 * Cluster access: one EKS access entry per Lambda role, mapping it to the Kubernetes group
 * `trainkeeper-control-plane`. No access policy is associated: what the group may do is the RBAC in
 * deploy/kubernetes/rbac.yaml, applied by the user per allowed namespace. The cluster must have access
 * entries enabled (authentication mode `API` or `API_AND_CONFIG_MAP`).
 */
import { eksName, type StageConfig } from './config.ts';
import type { ControlPlane } from './control-plane.ts';
import { KUBERNETES_GROUP, type LambdaName } from './policy.ts';

/** Creates the access entries of the four Lambda roles. */
export function clusterAccess(config: StageConfig, plane: ControlPlane): aws.eks.AccessEntry[] {
  return (Object.entries(plane.functions) as [LambdaName, sst.aws.Function][]).map(
    ([name, fn]) =>
      new aws.eks.AccessEntry(`${name[0]?.toUpperCase()}${name.slice(1)}AccessEntry`, {
        clusterName: eksName(config.cluster),
        principalArn: fn.nodes.role.arn,
        kubernetesGroups: [KUBERNETES_GROUP],
        type: 'STANDARD',
      }),
  );
}
