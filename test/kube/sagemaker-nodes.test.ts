import {
  BatchRebootClusterNodesCommand,
  BatchReplaceClusterNodesCommand,
  DescribeClusterNodeCommand,
  ListClusterNodesCommand,
  SageMakerClient,
} from '@aws-sdk/client-sagemaker';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import {
  hyperPodNodeName,
  instanceIdFromNodeName,
  RECOVERY_BATCH_SIZE,
  SageMakerNodes,
} from '../../adapters/aws/sagemaker-nodes.ts';
import { ForbiddenError, TransientError } from '../../core/errors.ts';

const sm = mockClient(SageMakerClient);
afterEach(() => sm.reset());
const client = () => new SageMakerClient({ region: 'us-west-2' });
const summary = (id: string, group = 'workers') => ({
  InstanceId: id,
  InstanceGroupName: group,
  InstanceType: 'ml.p5.48xlarge' as const,
  LaunchTime: new Date(0),
  InstanceStatus: { Status: 'Running' as const },
});
const id = (n: number) => `i-${n.toString(16).padStart(17, '0')}`;

describe('node names', () => {
  it.each([
    ['hyperpod-i-0123456789abcdef0', 'i-0123456789abcdef0'],
    ['hyperpod-i-0abc12345', 'i-0abc12345'],
    ['ip-10-0-0-1.ec2.internal', undefined],
    ['hyperpod-node-1', undefined],
  ])('reads the instance id of %s', (name, want) => {
    expect(instanceIdFromNodeName(name)).toBe(want);
  });

  it('names a node after its instance, as HyperPod does', () => {
    expect(hyperPodNodeName('i-0123456789abcdef0')).toBe('hyperpod-i-0123456789abcdef0');
  });
});

describe('SageMakerNodes', () => {
  it('lists every page of cluster nodes with their node names', async () => {
    sm.on(ListClusterNodesCommand, { ClusterName: 'hp', NextToken: undefined })
      .resolves({ ClusterNodeSummaries: [summary(id(1))], NextToken: 'p2' })
      .on(ListClusterNodesCommand, { ClusterName: 'hp', NextToken: 'p2' })
      .resolves({ ClusterNodeSummaries: [summary(id(2), 'spares')] });
    const nodes = await new SageMakerNodes(client(), 'hp').listNodes();
    expect(nodes).toEqual([
      {
        instanceId: id(1),
        nodeName: `hyperpod-${id(1)}`,
        instanceGroup: 'workers',
        instanceType: 'ml.p5.48xlarge',
        status: 'Running',
      },
      {
        instanceId: id(2),
        nodeName: `hyperpod-${id(2)}`,
        instanceGroup: 'spares',
        instanceType: 'ml.p5.48xlarge',
        status: 'Running',
      },
    ]);
    expect(sm.commandCalls(ListClusterNodesCommand)).toHaveLength(2);
  });

  it('describes one node, and returns nothing for an unknown one', async () => {
    sm.on(DescribeClusterNodeCommand, { NodeId: id(1) })
      .resolves({ NodeDetails: { ...summary(id(1)), PrivatePrimaryIp: '10.0.0.1' } })
      .on(DescribeClusterNodeCommand, { NodeId: id(9) })
      .rejects(
        Object.assign(new Error('no'), { name: 'ResourceNotFound', $metadata: { httpStatusCode: 400 } }),
      );
    const nodes = new SageMakerNodes(client(), 'hp');
    expect(await nodes.describeNode(id(1))).toMatchObject({ instanceId: id(1), status: 'Running' });
    expect(await nodes.describeNode(id(9))).toBeUndefined();
  });

  it('refuses to reboot or replace nodes unless recovery is enabled', async () => {
    await expect(new SageMakerNodes(client(), 'hp').recoverNodes('reboot', [id(1)])).rejects.toBeInstanceOf(
      ForbiddenError,
    );
    expect(sm.calls()).toHaveLength(0);
  });

  it('reboots in batches of 25 and reports per-node failures next to successes', async () => {
    const ids = Array.from({ length: RECOVERY_BATCH_SIZE + 3 }, (_, i) => id(i + 1));
    sm.on(BatchRebootClusterNodesCommand).callsFake(async (input: { NodeIds: string[] }) => ({
      Successful: input.NodeIds.filter((n) => n !== id(2)),
      Failed: input.NodeIds.includes(id(2))
        ? [{ NodeId: id(2), ErrorCode: 'InvalidInstanceStatus', Message: 'not running' }]
        : [],
    }));
    const result = await new SageMakerNodes(client(), 'hp', { recoveryEnabled: true }).recoverNodes(
      'reboot',
      [...ids, id(1)],
    );
    expect(
      sm.commandCalls(BatchRebootClusterNodesCommand).map((c) => c.args[0].input.NodeIds?.length),
    ).toEqual([25, 3]);
    expect(result.succeeded).toHaveLength(ids.length - 1);
    expect(result.failed).toEqual([
      { instanceId: id(2), code: 'InvalidInstanceStatus', message: 'not running' },
    ]);
  });

  it('replaces through BatchReplaceClusterNodes and turns a throttle into a TransientError', async () => {
    sm.on(BatchReplaceClusterNodesCommand).rejectsOnce(
      Object.assign(new Error('slow down'), {
        name: 'ThrottlingException',
        $metadata: { httpStatusCode: 400 },
      }),
    );
    const nodes = new SageMakerNodes(client(), 'hp', { recoveryEnabled: true });
    await expect(nodes.recoverNodes('replace', [id(1)])).rejects.toBeInstanceOf(TransientError);
    sm.on(BatchReplaceClusterNodesCommand).resolves({ Successful: [id(1)] });
    await expect(nodes.recoverNodes('replace', [id(1)])).resolves.toEqual({ succeeded: [id(1)], failed: [] });
  });
});
