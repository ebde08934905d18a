/**
 * HyperPod nodes as SageMaker sees them: maps EC2 instance ids ↔ Kubernetes node names (HyperPod names its
 * EKS nodes `hyperpod-<instance id>`), and, behind an explicit flag, asks SageMaker to reboot or replace
 * repeat-offender nodes (`BatchRebootClusterNodes` / `BatchReplaceClusterNodes`, hyperpod-spec §12).
 *
 * Invariants: recovery is refused (ForbiddenError) unless `recoveryEnabled`; batches never exceed the API's
 * 25 ids; a per-node failure (`InstanceIdNotFound`, `InvalidInstanceStatus`, …) is reported per node and
 * never hides the others' success. AWS errors are translated into the taxonomy.
 */
import {
  BatchRebootClusterNodesCommand,
  type BatchRebootClusterNodesCommandOutput,
  BatchReplaceClusterNodesCommand,
  type BatchReplaceClusterNodesCommandOutput,
  type ClusterNodeDetails,
  type ClusterNodeSummary,
  DescribeClusterNodeCommand,
  ListClusterNodesCommand,
  type SageMakerClient,
} from '@aws-sdk/client-sagemaker';
import { ForbiddenError, NotFoundError } from '../../core/errors.ts';
import { translateAwsError } from './errors.ts';

/** The API's limit of ids per batch reboot/replace call. */
export const RECOVERY_BATCH_SIZE = 25;

const INSTANCE_ID = /^i-[0-9a-f]{8,17}$/;

/** HyperPod's Kubernetes node name for an instance. */
export function hyperPodNodeName(instanceId: string): string {
  return `hyperpod-${instanceId}`;
}

/** The instance id in a HyperPod node name, or undefined for another naming scheme. */
export function instanceIdFromNodeName(nodeName: string): string | undefined {
  const id = nodeName.startsWith('hyperpod-') ? nodeName.slice('hyperpod-'.length) : undefined;
  return id && INSTANCE_ID.test(id) ? id : undefined;
}

/** One HyperPod node. `status` is SageMaker's instance status (`Running`, `Failure`, `ShuttingDown`, …). */
export interface HyperPodNode {
  instanceId: string;
  nodeName: string;
  instanceGroup?: string;
  instanceType?: string;
  status?: string;
  privateDnsHostname?: string;
}

/** The outcome of a reboot/replace request, per instance. */
export interface RecoveryResult {
  succeeded: string[];
  failed: { instanceId: string; code: string; message: string }[];
}

function toNode(n: ClusterNodeSummary | ClusterNodeDetails): HyperPodNode | undefined {
  if (!n.InstanceId) return undefined;
  const dns = 'PrivateDnsHostname' in n ? n.PrivateDnsHostname : undefined;
  return {
    instanceId: n.InstanceId,
    nodeName: hyperPodNodeName(n.InstanceId),
    ...(n.InstanceGroupName ? { instanceGroup: n.InstanceGroupName } : {}),
    ...(n.InstanceType ? { instanceType: n.InstanceType } : {}),
    ...(n.InstanceStatus?.Status ? { status: n.InstanceStatus.Status } : {}),
    ...(dns ? { privateDnsHostname: dns } : {}),
  };
}

/** SageMaker's view of one HyperPod cluster's nodes. */
export class SageMakerNodes {
  constructor(
    private readonly client: SageMakerClient,
    private readonly clusterName: string,
    private readonly options: { recoveryEnabled?: boolean } = {},
  ) {}

  /** Every node of the cluster (all pages). */
  async listNodes(): Promise<HyperPodNode[]> {
    const nodes: HyperPodNode[] = [];
    let next: string | undefined;
    do {
      const page = await this.client
        .send(
          new ListClusterNodesCommand({ ClusterName: this.clusterName, MaxResults: 100, NextToken: next }),
        )
        .catch((err: unknown) => {
          throw translateAwsError('sagemaker:ListClusterNodes', err);
        });
      for (const s of page.ClusterNodeSummaries ?? []) {
        const node = toNode(s);
        if (node) nodes.push(node);
      }
      next = page.NextToken || undefined;
    } while (next);
    return nodes;
  }

  /** One node by instance id, or undefined when SageMaker does not know it. */
  async describeNode(instanceId: string): Promise<HyperPodNode | undefined> {
    try {
      const out = await this.client.send(
        new DescribeClusterNodeCommand({ ClusterName: this.clusterName, NodeId: instanceId }),
      );
      return out.NodeDetails ? toNode(out.NodeDetails) : undefined;
    } catch (err) {
      const translated = translateAwsError('sagemaker:DescribeClusterNode', err);
      if (translated instanceof NotFoundError) return undefined;
      throw translated;
    }
  }

  /** Instance id → node name for every node SageMaker lists. */
  async nodeNamesByInstance(): Promise<Map<string, string>> {
    return new Map((await this.listNodes()).map((n) => [n.instanceId, n.nodeName]));
  }

  /**
   * Asks SageMaker to reboot (soft) or replace (hard) these instances, in batches of 25. Refused unless
   * the adapter was built with `recoveryEnabled`.
   */
  async recoverNodes(action: 'reboot' | 'replace', instanceIds: string[]): Promise<RecoveryResult> {
    if (!this.options.recoveryEnabled) {
      throw new ForbiddenError(
        `node ${action} is disabled (enable node recovery to let TrainKeeper ${action} nodes)`,
      );
    }
    const ids = [...new Set(instanceIds)];
    const result: RecoveryResult = { succeeded: [], failed: [] };
    for (let i = 0; i < ids.length; i += RECOVERY_BATCH_SIZE) {
      const batch = ids.slice(i, i + RECOVERY_BATCH_SIZE);
      const input = { ClusterName: this.clusterName, NodeIds: batch };
      const operation =
        action === 'reboot' ? 'sagemaker:BatchRebootClusterNodes' : 'sagemaker:BatchReplaceClusterNodes';
      let out: BatchRebootClusterNodesCommandOutput | BatchReplaceClusterNodesCommandOutput;
      try {
        out =
          action === 'reboot'
            ? await this.client.send(new BatchRebootClusterNodesCommand(input))
            : await this.client.send(new BatchReplaceClusterNodesCommand(input));
      } catch (err) {
        throw translateAwsError(operation, err);
      }
      result.succeeded.push(...(out.Successful ?? []));
      for (const f of out.Failed ?? []) {
        result.failed.push({
          instanceId: f.NodeId ?? '',
          code: String(f.ErrorCode ?? 'Unknown'),
          message: f.Message ?? '',
        });
      }
    }
    return result;
  }
}
