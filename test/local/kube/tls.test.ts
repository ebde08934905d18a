import { createPrivateKey, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../../local/kube/tls.ts';

describe('the self-signed certificate of the local API server', () => {
  const now = Date.parse('2026-06-01T00:00:00Z');
  const pem = selfSignedCertificate({ now, days: 30 });
  const cert = new X509Certificate(pem.cert);

  it.each([
    ['is its own CA', () => cert.ca, true],
    ['is signed by its own key', () => cert.verify(cert.publicKey), true],
    ['matches its private key', () => cert.checkPrivateKey(createPrivateKey(pem.key)), true],
    ['names 127.0.0.1 for Go clients, which ignore the CN', () => cert.checkIP('127.0.0.1'), '127.0.0.1'],
    ['names localhost', () => cert.checkHost('localhost'), 'localhost'],
    ['is valid from a day before now', () => Date.parse(cert.validFrom), now - 86_400_000],
    ['is valid for the requested days', () => Date.parse(cert.validTo), now + 30 * 86_400_000],
  ])('%s', (_name, read, expected) => {
    expect(read()).toEqual(expected);
  });

  it('always encodes a serial that OpenSSL parses (positive, no leading zero byte), over many draws', () => {
    // A 1-in-256 draw used to start the serial with 0x00 followed by a byte below 0x80: illegal padding.
    for (let i = 0; i < 1500; i++) {
      const serial = new X509Certificate(selfSignedCertificate().cert).serialNumber;
      expect(serial).toMatch(/^[4-7][0-9A-F]{31}$/);
    }
  });

  it('gets a fresh key and serial on every call', () => {
    const other = new X509Certificate(selfSignedCertificate().cert);
    expect(other.serialNumber).not.toBe(cert.serialNumber);
    expect(other.publicKey.export({ type: 'spki', format: 'der' })).not.toEqual(
      cert.publicKey.export({ type: 'spki', format: 'der' }),
    );
  });
});
