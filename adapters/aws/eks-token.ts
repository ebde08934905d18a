/**
 * EKS bearer tokens, as `aws eks get-token` / aws-iam-authenticator make them: `k8s-aws-v1.` + base64url
 * (no padding) of a presigned STS `GetCallerIdentity` URL whose signature covers the `x-k8s-aws-id: <cluster>`
 * header. EKS forwards the URL to STS to learn the caller's IAM identity, then maps it through the
 * cluster's access entries (here: to the Kubernetes group `trainkeeper-control-plane`).
 *
 * No STS call is made here: presigning is local (SigV4 over the URL). A token is valid for 15 minutes;
 * `EksTokenProvider` reuses one for 14 so a request never carries a token about to expire.
 */
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';

/** Prefix EKS expects on bearer tokens. */
export const EKS_TOKEN_PREFIX = 'k8s-aws-v1.';
/** Header naming the cluster; signed so a token for one cluster cannot be replayed against another. */
export const CLUSTER_ID_HEADER = 'x-k8s-aws-id';
/** X-Amz-Expires of the presigned URL, as aws-iam-authenticator sets it. */
export const PRESIGN_EXPIRES_SECONDS = 60;
/** How long a cached token is reused (EKS accepts it for 15 min). */
export const TOKEN_REUSE_MS = 14 * 60_000;

/** Inputs of one token. `signingDate` defaults to now. */
export interface EksTokenInput {
  clusterName: string;
  region: string;
  credentials: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  signingDate?: Date;
}

const SIGNATURE_PARAM = 'X-Amz-Signature';

/** RFC 3986 encoding, as SigV4 canonical query strings use. */
const rfc3986 = (s: string) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** The presigned STS GetCallerIdentity URL (query keys sorted, RFC 3986 encoded, signature last). */
export async function presignedCallerIdentityUrl(input: EksTokenInput): Promise<string> {
  const hostname = `sts.${input.region}.amazonaws.com`;
  const signer = new SignatureV4({
    credentials: input.credentials,
    region: input.region,
    service: 'sts',
    sha256: Sha256,
  });
  const request = new HttpRequest({
    protocol: 'https:',
    method: 'GET',
    hostname,
    path: '/',
    query: { Action: 'GetCallerIdentity', Version: '2011-06-15' },
    headers: { host: hostname, [CLUSTER_ID_HEADER]: input.clusterName },
  });
  const signed = await signer.presign(request, {
    expiresIn: PRESIGN_EXPIRES_SECONDS,
    signingDate: input.signingDate ?? new Date(),
  });
  const { [SIGNATURE_PARAM]: signature, ...rest } = signed.query ?? {};
  const query = Object.keys(rest)
    .sort()
    .map((k) => `${rfc3986(k)}=${rfc3986(String(rest[k]))}`)
    .join('&');
  // Signature last, as aws-iam-authenticator (Go SDK) writes it.
  return `https://${hostname}/?${query}&${SIGNATURE_PARAM}=${String(signature)}`;
}

/** One EKS bearer token for `input` (no caching). */
export async function eksToken(input: EksTokenInput): Promise<string> {
  const url = await presignedCallerIdentityUrl(input);
  return EKS_TOKEN_PREFIX + Buffer.from(url, 'utf8').toString('base64url');
}

/**
 * A cached token source for one cluster. Invariant: `getToken()` never returns a token older than
 * `TOKEN_REUSE_MS` by `now()`; concurrent callers during a refresh share one presign.
 */
export class EksTokenProvider {
  private cached: { token: string; issuedAt: number } | undefined;
  private pending: Promise<string> | undefined;

  constructor(private readonly options: Omit<EksTokenInput, 'signingDate'> & { now?: () => number }) {}

  async getToken(): Promise<string> {
    const now = this.options.now?.() ?? Date.now();
    if (this.cached && now - this.cached.issuedAt < TOKEN_REUSE_MS) return this.cached.token;
    if (!this.pending) {
      this.pending = eksToken({ ...this.options, signingDate: new Date(now) })
        .then((token) => {
          this.cached = { token, issuedAt: now };
          return token;
        })
        .finally(() => {
          this.pending = undefined;
        });
    }
    return this.pending;
  }
}
