import { randomUUID } from 'node:crypto';
import { DescribeClusterCommand as DescribeEksClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import {
  DescribeClusterCommand as DescribeHyperPodClusterCommand,
  SageMakerClient,
} from '@aws-sdk/client-sagemaker';
import { CoreV1Api } from '@kubernetes/client-node';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import {
  clusterKubeConfig,
  eksClusterNameFromArn,
  eksKubeConfig,
  resolveEksEndpoint,
} from '../../../adapters/aws/cluster-endpoint.ts';
import { eksToken } from '../../../adapters/aws/eks-token.ts';
import { NotFoundError, TransientError, ValidationError } from '../../../core/errors.ts';
import { LocalApiServer } from '../../../local/kube/api-server.ts';
import { ObjectStore } from '../../../local/kube/store.ts';

const sagemaker = mockClient(SageMakerClient);
const eks = mockClient(EKSClient);
afterEach(() => {
  sagemaker.reset();
  eks.reset();
});

const ARN = 'arn:aws:eks:us-west-2:123456789012:cluster/hp-eks';
const CA = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString('base64');
const clients = () => ({
  sagemaker: new SageMakerClient({ region: 'us-west-2' }),
  eks: new EKSClient({ region: 'us-west-2' }),
});
const awsError = (name: string, status: number) =>
  Object.assign(new Error(`${name} happened`), { name, $metadata: { httpStatusCode: status } });

describe('resolveEksEndpoint', () => {
  it('follows a HyperPod cluster to its EKS cluster endpoint and CA', async () => {
    sagemaker.on(DescribeHyperPodClusterCommand, { ClusterName: 'hp' }).resolves({
      ClusterArn: 'arn:aws:sagemaker:us-west-2:123456789012:cluster/abc',
      ClusterStatus: 'InService',
      InstanceGroups: [],
      Orchestrator: { Eks: { ClusterArn: ARN } },
    });
    eks.on(DescribeEksClusterCommand, { name: 'hp-eks' }).resolves({
      cluster: {
        name: 'hp-eks',
        endpoint: 'https://ABC.gr7.us-west-2.eks.amazonaws.com',
        certificateAuthority: { data: CA },
      },
    });
    await expect(resolveEksEndpoint({ hyperPodClusterName: 'hp' }, clients())).resolves.toEqual({
      eksClusterName: 'hp-eks',
      endpoint: 'https://ABC.gr7.us-west-2.eks.amazonaws.com',
      caData: CA,
    });
  });

  it('goes straight to EKS for an EKS cluster name', async () => {
    eks.on(DescribeEksClusterCommand, { name: 'plain' }).resolves({
      cluster: { endpoint: 'https://x', certificateAuthority: { data: CA } },
    });
    await expect(resolveEksEndpoint({ eksClusterName: 'plain' }, clients())).resolves.toMatchObject({
      eksClusterName: 'plain',
    });
    expect(sagemaker.calls()).toHaveLength(0);
  });

  it.each([
    ['a Slurm HyperPod cluster', { Orchestrator: { Slurm: {} } }, undefined, ValidationError],
    ['an unknown HyperPod cluster', awsError('ResourceNotFound', 400), undefined, NotFoundError],
    [
      'an EKS cluster still being created',
      { Orchestrator: { Eks: { ClusterArn: ARN } } },
      { status: 'CREATING' },
      TransientError,
    ],
    ['a throttled SageMaker call', awsError('ThrottlingException', 400), undefined, TransientError],
  ])('rejects %s with the right error', async (_, hp, cluster, type) => {
    if (hp instanceof Error) sagemaker.on(DescribeHyperPodClusterCommand).rejects(hp);
    else
      sagemaker
        .on(DescribeHyperPodClusterCommand)
        .resolves({ ClusterArn: 'a', ClusterStatus: 'InService', InstanceGroups: [], ...hp });
    eks.on(DescribeEksClusterCommand).resolves({ cluster: cluster as never });
    await expect(resolveEksEndpoint({ hyperPodClusterName: 'hp' }, clients())).rejects.toBeInstanceOf(type);
  });
});

describe('eksClusterNameFromArn', () => {
  it.each([
    [ARN, 'hp-eks'],
    ['arn:aws-cn:eks:cn-north-1:123456789012:cluster/c_1', 'c_1'],
  ])('reads the cluster name of %s', (arn, name) => {
    expect(eksClusterNameFromArn(arn)).toBe(name);
  });

  it('rejects a non-EKS ARN with the field path', () => {
    expect(() => eksClusterNameFromArn('arn:aws:sagemaker:us-west-2:123456789012:cluster/x')).toThrow(
      ValidationError,
    );
  });
});

describe('clusterKubeConfig', () => {
  it('reaches the API server with the EKS bearer token of the resolved cluster', async () => {
    const now = Date.parse('2026-11-28T12:00:00Z');
    const credentials = { accessKeyId: 'AKID', secretAccessKey: 'secret' };
    const token = await eksToken({
      clusterName: 'hp-eks',
      region: 'us-west-2',
      credentials,
      signingDate: new Date(now),
    });
    const store = new ObjectStore();
    store.create('namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'team-a' } as never,
    });
    const server = new LocalApiServer({ store, token, proxy: () => undefined });
    const url = await server.listen();
    try {
      sagemaker.on(DescribeHyperPodClusterCommand).resolves({
        ClusterArn: 'a',
        ClusterStatus: 'InService',
        InstanceGroups: [],
        Orchestrator: { Eks: { ClusterArn: ARN } },
      });
      eks
        .on(DescribeEksClusterCommand)
        .resolves({ cluster: { endpoint: url, certificateAuthority: { data: CA } } });
      const kc = await clusterKubeConfig({
        target: { hyperPodClusterName: 'hp' },
        region: 'us-west-2',
        credentials,
        ...clients(),
        now: () => now,
      });
      const pods = await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: 'team-a' });
      expect(pods.items).toEqual([]);
      expect(kc.getCurrentCluster()?.caData).toBe(CA);
    } finally {
      await server.close();
    }
  });

  it('is refused by a server expecting another token', async () => {
    const store = new ObjectStore();
    const server = new LocalApiServer({ store, token: randomUUID() });
    const url = await server.listen();
    try {
      eks
        .on(DescribeEksClusterCommand)
        .resolves({ cluster: { endpoint: url, certificateAuthority: { data: CA } } });
      const kc = await clusterKubeConfig({
        target: { eksClusterName: 'plain' },
        region: 'us-west-2',
        credentials: { accessKeyId: 'A', secretAccessKey: 'S' },
        eks: new EKSClient({ region: 'us-west-2' }),
      });
      await expect(kc.makeApiClient(CoreV1Api).listNode()).rejects.toMatchObject({ code: 401 });
    } finally {
      await server.close();
    }
  });
});

describe('eksKubeConfig', () => {
  it('refuses a plain-HTTP endpoint off loopback', () => {
    expect(() =>
      eksKubeConfig(
        { eksClusterName: 'c', endpoint: 'http://example.com', caData: CA },
        { getToken: async () => 't' },
      ),
    ).toThrow(ValidationError);
  });
});
