/**
 * The deploying account's identity (partition, account id) as Pulumi outputs, for the ARNs the stacks build
 * from names (EKS cluster, existing AMP workspace, the application log group). One lookup per program.
 */
/** Partition and account of the deploying credentials; the region is the stage's. */
export interface AccountContext {
  partition: $util.Output<string>;
  account: $util.Output<string>;
  region: string;
}

/** Reads the caller's account and partition (two data-source calls, no resources). */
export function accountContext(region: string): AccountContext {
  return {
    partition: aws.getPartitionOutput({}).partition,
    account: aws.getCallerIdentityOutput({}).accountId,
    region,
  };
}
