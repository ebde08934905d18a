/**
 * The one SigV4 request signer, over `@smithy/signature-v4` (the SDK's own signer), for HTTP calls the SDK has
 * no client for: Amazon Managed Prometheus remote write (service `aps`) and the CLI's requests to the API
 * Gateway endpoint (service `execute-api`, cli/client.ts). Credentials default to the SDK's node provider
 * chain (Lambda role, env, profile), loaded lazily so code that never signs never loads it.
 *
 * Invariant: the returned headers include `host`, `x-amz-date`, `x-amz-content-sha256` (when asked),
 * `authorization` and, for temporary credentials, `x-amz-security-token`; the body is signed as given.
 */
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';

/** Fixed credentials or a provider of them (the signer's own credential type). */
export type CredentialsInput = ConstructorParameters<typeof SignatureV4>[0]['credentials'];
type Credentials = Awaited<ReturnType<Extract<CredentialsInput, (...args: never[]) => unknown>>>;

/** Where and as whom to sign. */
export interface SigV4Config {
  region: string;
  service: string;
  /** Fixed credentials or a provider; default: `fromNodeProviderChain()`. */
  credentials?: CredentialsInput;
}

/** One HTTP request to sign. */
export interface SignableRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: Uint8Array | string;
  /** Fixed signing time (tests); default now. */
  signingDate?: Date;
}

/** Signs one request and returns the headers to send (the request's plus the signature's). */
export type Signer = (request: SignableRequest) => Promise<Record<string, string>>;

/** A reusable signer for one region/service; credentials are resolved (and refreshed) by the provider. */
export function makeSigner(config: SigV4Config): Signer {
  let credentials: CredentialsInput | undefined = config.credentials;
  const provider = async (): Promise<Credentials> => {
    if (!credentials) {
      const { fromNodeProviderChain } = await import('@aws-sdk/credential-providers');
      credentials = fromNodeProviderChain();
    }
    return typeof credentials === 'function' ? credentials() : credentials;
  };
  const signer = new SignatureV4({
    service: config.service,
    region: config.region,
    credentials: provider,
    sha256: Sha256,
    applyChecksum: true,
  });
  return async (request) => {
    const url = new URL(request.url);
    const query: Record<string, string | string[]> = {};
    for (const [k, v] of url.searchParams) {
      const prev = query[k];
      query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
    }
    const signed = await signer.sign(
      new HttpRequest({
        method: request.method,
        protocol: url.protocol,
        hostname: url.hostname,
        ...(url.port ? { port: Number(url.port) } : {}),
        path: url.pathname,
        query,
        headers: { ...request.headers, host: url.host },
        body: request.body,
      }),
      request.signingDate ? { signingDate: request.signingDate } : {},
    );
    return signed.headers;
  };
}
