/**
 * Checkpoint writes that failed: uploads to S3, writes to FSx for Lustre (or any shared file system),
 * and frameworks' own "checkpoint save failed" reports.
 */
import type { LogRuleInput } from '../../core/spec/types.ts';

/** The `checkpoint` preset's rules, as written (named `preset.checkpoint.<name>` once loaded). */
export const rules: readonly LogRuleInput[] = [
  // boto3: "boto3.exceptions.S3UploadFailedError: Failed to upload /fsx/ckpt/model.safetensors to
  // bucket/key: An error occurred (SlowDown) when calling the UploadPart operation ...";
  // botocore: "botocore.exceptions.ClientError: An error occurred (AccessDenied) when calling the
  // PutObject operation: Access Denied"; s3torchconnector: "S3Exception: Client error: ... PutObject".
  {
    name: 's3-upload-failed',
    logPattern: String.raw`.*(?:S3UploadFailedError|An error occurred \(\w+\) when calling the (?:PutObject|UploadPart|CreateMultipartUpload|CompleteMultipartUpload) operation|S3Exception: .*(?:PutObject|UploadPart|CompleteMultipartUpload))`,
    faultOnMatch: true,
  },
  // Shared file-system write errors: "OSError: [Errno 122] Disk quota exceeded", "[Errno 28] No space
  // left on device", "[Errno 5] Input/output error: '/fsx/...'", and Lustre client lines
  // ("LustreError: 11-0: fsx-OST0003-osc-ffff...: operation ost_write to node 10.1.0.7@tcp failed: rc = -107").
  {
    name: 'storage-write-error',
    logPattern: String.raw`.*(?:\[Errno (?:5|28|122)\] (?:Input/output error|No space left on device|Disk quota exceeded)|LustreError: )`,
    faultOnMatch: true,
  },
  // Frameworks' reports: "Failed to save checkpoint" (NeMo, Lightning callbacks, custom loops),
  // PyTorch Distributed Checkpoint's "torch.distributed.checkpoint.api.CheckpointException: ...".
  {
    name: 'save-failed',
    logPattern: String.raw`.*(?:Failed to save checkpoint|Error saving checkpoint|checkpoint\.api\.CheckpointException|CheckpointException: CheckpointException ranks)`,
    faultOnMatch: true,
  },
];
