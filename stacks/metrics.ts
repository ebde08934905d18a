/**
 * Amazon Managed Service for Prometheus: a workspace per stage, or an existing one by id. The Lambdas push
 * with SigV4 (`aps:RemoteWrite` on this workspace only).
 */
import type { AccountContext } from './account.ts';
import type { StageConfig } from './config.ts';
import { ampEndpoint, ampWorkspaceArn, remoteWriteUrl } from './policy.ts';

/** The workspace the Lambdas push to. */
export interface MetricsWorkspace {
  arn: $util.Output<string>;
  remoteWriteUrl: $util.Output<string>;
}

/** Creates the workspace (`amp: {create: true}`) or refers to the configured one. */
export function metrics(config: StageConfig, account: AccountContext): MetricsWorkspace {
  if ('workspaceId' in config.amp) {
    const id = config.amp.workspaceId;
    return {
      arn: $resolve({ partition: account.partition, acct: account.account }).apply(({ partition, acct }) =>
        ampWorkspaceArn({ partition, region: config.region, account: acct, id }),
      ),
      remoteWriteUrl: $output(remoteWriteUrl(ampEndpoint(config.region, id))),
    };
  }
  const workspace = new aws.amp.Workspace('Metrics', { alias: `trainkeeper-${config.stage}` });
  return {
    arn: workspace.arn,
    remoteWriteUrl: workspace.prometheusEndpoint.apply(remoteWriteUrl),
  };
}
