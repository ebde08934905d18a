/**
 * CUDA runtime and driver faults raised into PyTorch: illegal memory access, uncorrectable ECC errors,
 * device-side asserts, launch failures, cuBLAS/cuDNN execution failures. Out-of-memory is the `oom`
 * preset's business, so "CUDA error: out of memory" is left to it (one line, one finding).
 */
import type { LogRuleInput } from '../../core/spec/types.ts';

/** The `cuda` preset's rules, as written (named `preset.cuda.<name>` once loaded). */
export const rules: readonly LogRuleInput[] = [
  // "RuntimeError: CUDA error: an illegal memory access was encountered", "... CUDA error:
  // uncorrectable ECC error encountered", "... CUDA error: device-side assert triggered",
  // "CUDA error: CUBLAS_STATUS_EXECUTION_FAILED when calling `cublasGemmEx(...)`", and the
  // "terminate called after throwing an instance of 'c10::Error' / what():  CUDA error: ..." summary.
  // `(?:[a-np-zA-Z]|o[^u])`: a message (not a number), and not "out of memory".
  {
    name: 'cuda-error',
    logPattern: '.*CUDA error: (?:[a-np-zA-Z]|o[^u])',
    faultOnMatch: true,
  },
  // The CUDA driver API's spelling, as Triton kernels and JAX/XLA report it: "RuntimeError: Triton Error
  // [CUDA]: an illegal memory access was encountered", "CUDA_ERROR_ECC_UNCORRECTABLE".
  {
    name: 'driver-error',
    logPattern: String.raw`.*(?:Triton Error \[CUDA\]: |CUDA driver error: |CUDA_ERROR_(?:ILLEGAL_ADDRESS|ECC_UNCORRECTABLE|LAUNCH_FAILED|HARDWARE_STACK_ERROR|ILLEGAL_INSTRUCTION|MISALIGNED_ADDRESS|UNKNOWN)\b)`,
    faultOnMatch: true,
  },
];
