/**
 * Where the Kubernetes API of a job's cluster is, and a KubeConfig that reaches it as the Lambda's IAM role.
 *
 * A HyperPod cluster name resolves through SageMaker `DescribeCluster` → `Orchestrator.Eks.ClusterArn` →
 * EKS `DescribeCluster` (endpoint + CA); a plain EKS cluster name goes straight to EKS. The KubeConfig
 * authenticates every request with a fresh-enough EKS token (eks-token.ts), so one KubeConfig serves a
 * warm Lambda for its whole life. AWS errors are translated into the error taxonomy by `translateAwsError` (errors.ts).
 */
import { DescribeClusterCommand as DescribeEksClusterCommand, type EKSClient } from '@aws-sdk/client-eks';
import {
  DescribeClusterCommand as DescribeHyperPodClusterCommand,
  type SageMakerClient,
} from '@aws-sdk/client-sagemaker';
import { KubeConfig, type User } from '@kubernetes/client-node';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { TransientError, ValidationError } from '../../core/errors.ts';
import { EksTokenProvider } from './eks-token.ts';
import { translateAwsError } from './errors.ts';

/** Which cluster: exactly one of the two names. */
export type ClusterTarget = { hyperPodClusterName: string } | { eksClusterName: string };

/** The resolved API endpoint of an EKS cluster. `caData` is base64 PEM, as EKS returns it. */
export interface EksEndpoint {
  eksClusterName: string;
  endpoint: string;
  caData: string;
}

/** The EKS cluster name in an EKS cluster ARN (`arn:aws:eks:<region>:<account>:cluster/<name>`). */
export function eksClusterNameFromArn(arn: string): string {
  const match = /^arn:aws[\w-]*:eks:[\w-]+:\d{12}:cluster\/([\w-]+)$/.exec(arn);
  if (!match?.[1]) {
    throw new ValidationError(`not an EKS cluster ARN: ${arn}`, [
      { path: 'Orchestrator.Eks.ClusterArn', message: 'not an EKS cluster ARN' },
    ]);
  }
  return match[1];
}

/** Resolves endpoint and CA of the target cluster. */
export async function resolveEksEndpoint(
  target: ClusterTarget,
  clients: { sagemaker?: SageMakerClient; eks: EKSClient },
): Promise<EksEndpoint> {
  let eksClusterName: string;
  if ('hyperPodClusterName' in target) {
    if (!clients.sagemaker)
      throw new ValidationError('a SageMaker client is needed for a HyperPod cluster name');
    const hp = await clients.sagemaker
      .send(new DescribeHyperPodClusterCommand({ ClusterName: target.hyperPodClusterName }))
      .catch((err: unknown) => {
        throw translateAwsError('sagemaker:DescribeCluster', err);
      });
    const arn = hp.Orchestrator?.Eks?.ClusterArn;
    if (!arn) {
      throw new ValidationError(`HyperPod cluster ${target.hyperPodClusterName} is not orchestrated by EKS`, [
        { path: 'Orchestrator.Eks.ClusterArn', message: 'absent: the cluster is not EKS-orchestrated' },
      ]);
    }
    eksClusterName = eksClusterNameFromArn(arn);
  } else {
    eksClusterName = target.eksClusterName;
  }
  const eks = await clients.eks
    .send(new DescribeEksClusterCommand({ name: eksClusterName }))
    .catch((err: unknown) => {
      throw translateAwsError('eks:DescribeCluster', err);
    });
  const endpoint = eks.cluster?.endpoint;
  const caData = eks.cluster?.certificateAuthority?.data;
  if (!endpoint || !caData) {
    // A cluster still being created has neither yet.
    throw new TransientError(
      `EKS cluster ${eksClusterName} has no endpoint yet (status ${eks.cluster?.status})`,
    );
  }
  return { eksClusterName, endpoint, caData };
}

const USER_NAME = 'trainkeeper-eks';

/**
 * A KubeConfig for `endpoint` whose requests carry `Authorization: Bearer <token>` from `tokens` (looked up
 * per request, so a cached token is refreshed when due). The endpoint must be HTTPS, verified against
 * `caData`; plain HTTP is accepted on loopback only (the local API server).
 */
export function eksKubeConfig(endpoint: EksEndpoint, tokens: { getToken(): Promise<string> }): KubeConfig {
  const url = new URL(endpoint.endpoint);
  // client-node refuses plain HTTP unless TLS verification is off. Plain HTTP is only accepted on loopback
  // (the local API server, which has no TLS to verify); EKS endpoints are always HTTPS with the CA below.
  const loopbackHttp = url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !loopbackHttp) {
    throw new ValidationError(`cluster endpoint must be https: ${endpoint.endpoint}`, [
      { path: 'cluster.endpoint', message: 'must be https (plain http only on loopback)' },
    ]);
  }
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      {
        name: endpoint.eksClusterName,
        server: endpoint.endpoint,
        caData: endpoint.caData,
        ...(loopbackHttp ? { skipTLSVerify: true } : {}),
      },
    ],
    users: [{ name: USER_NAME }],
    contexts: [{ name: endpoint.eksClusterName, cluster: endpoint.eksClusterName, user: USER_NAME }],
    currentContext: endpoint.eksClusterName,
  });
  kc.addAuthenticator({
    isAuthProvider: (user: User) => user.name === USER_NAME,
    applyAuthentication: async (_user, opts) => {
      opts.headers = { ...(opts.headers ?? {}), Authorization: `Bearer ${await tokens.getToken()}` };
    },
  });
  return kc;
}

/** Everything `clusterKubeConfig` needs; `now` is for tests. */
export interface ClusterKubeConfigInput {
  target: ClusterTarget;
  region: string;
  credentials: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  sagemaker?: SageMakerClient;
  eks: EKSClient;
  now?: () => number;
}

/** Resolves the cluster and returns its KubeConfig with a cached EKS token provider. */
export async function clusterKubeConfig(input: ClusterKubeConfigInput): Promise<KubeConfig> {
  const endpoint = await resolveEksEndpoint(input.target, {
    eks: input.eks,
    ...(input.sagemaker ? { sagemaker: input.sagemaker } : {}),
  });
  const tokens = new EksTokenProvider({
    clusterName: endpoint.eksClusterName,
    region: input.region,
    credentials: input.credentials,
    ...(input.now ? { now: input.now } : {}),
  });
  return eksKubeConfig(endpoint, tokens);
}
