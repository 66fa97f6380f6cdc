import { execFileSync, spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import type { AddressInfo } from 'net';
import * as os from 'os';
import * as path from 'path';
import * as tls from 'tls';
import {
  CLOCK_SKEW_MS,
  KeyUsageBit,
  Oid,
  createCa,
  createServerCertificate,
  derBoolean,
  derInteger,
  derLength,
  derNamedBits,
  derOid,
  derSet,
  derTime,
  derUtf8String,
  ipAddressOctets,
  recreateCaCertificate,
  type CertificateAndKey,
} from '../../../constructs/consul/private/secrets-handler/x509';

const DAY_MS = 24 * 60 * 60 * 1000;

const hex = (b: Buffer): string => b.toString('hex');

function serverCertificate(ca: CertificateAndKey, dc = 'dc1', validityDays = 365): CertificateAndKey {
  return createServerCertificate({
    ca,
    commonName: `server.${dc}.consul`,
    dnsNames: [`server.${dc}.consul`, 'localhost'],
    ipAddresses: ['127.0.0.1'],
    validityDays,
  });
}

// One CA and server certificate for the read-only checks: key generation is cheap, but there is no need to repeat it.
const ca = createCa({ commonName: 'lambda-mesh Consul CA dc1', validityDays: 3650 });
const server = serverCertificate(ca);
const otherCa = createCa({ commonName: 'lambda-mesh Consul CA dc1', validityDays: 3650 });

describe('DER encoder (X.690)', () => {
  test('lengths use the short form below 128 and the shortest long form above', () => {
    expect(hex(derLength(0))).toBe('00');
    expect(hex(derLength(127))).toBe('7f');
    expect(hex(derLength(128))).toBe('8180');
    expect(hex(derLength(255))).toBe('81ff');
    expect(hex(derLength(256))).toBe('820100');
    expect(hex(derLength(70000))).toBe('83011170');
  });

  test('INTEGER is minimal and stays positive', () => {
    expect(hex(derInteger(0))).toBe('020100');
    expect(hex(derInteger(2))).toBe('020102');
    expect(hex(derInteger(127))).toBe('02017f');
    expect(hex(derInteger(128))).toBe('02020080');
    expect(hex(derInteger(Buffer.from([0, 0, 1])))).toBe('020101');
    expect(hex(derInteger(Buffer.from([0xff, 0x01])))).toBe('020300ff01');
  });

  test('OBJECT IDENTIFIER packs the first two arcs and writes base-128 arcs', () => {
    expect(hex(derOid(Oid.ECDSA_WITH_SHA256))).toBe('06082a8648ce3d040302');
    expect(hex(derOid(Oid.SUBJECT_ALT_NAME))).toBe('0603551d11');
    expect(hex(derOid(Oid.SERVER_AUTH))).toBe('06082b06010505070301');
    expect(() => derOid('3.1')).toThrow(/invalid OID/);
  });

  test('named BIT STRINGs drop trailing zero bits (keyUsage as OpenSSL writes it)', () => {
    const caUsage = [KeyUsageBit.DIGITAL_SIGNATURE, KeyUsageBit.KEY_CERT_SIGN, KeyUsageBit.CRL_SIGN];
    expect(hex(derNamedBits(caUsage))).toBe('03020186');
    expect(hex(derNamedBits([KeyUsageBit.DIGITAL_SIGNATURE, KeyUsageBit.KEY_ENCIPHERMENT]))).toBe('030205a0');
    expect(hex(derNamedBits([8]))).toBe('0303070080'); // decipherOnly spills into a second octet
  });

  test('times are UTCTime through 2049 and GeneralizedTime from 2050 (RFC 5280 4.1.2.5)', () => {
    expect(derTime(new Date('2049-12-31T23:59:59.999Z')).toString('latin1')).toBe('\x17\x0d491231235959Z');
    expect(derTime(new Date('2050-01-01T00:00:00Z')).toString('latin1')).toBe('\x18\x0f20500101000000Z');
  });

  test('SET OF sorts its elements, BOOLEAN TRUE is 0xff, UTF8String keeps multi-byte characters', () => {
    const a = derUtf8String('a');
    const b = derUtf8String('b');
    expect(derSet(b, a)).toEqual(derSet(a, b));
    expect(hex(derBoolean(true))).toBe('0101ff');
    expect(hex(derUtf8String('é'))).toBe('0c02c3a9');
  });

  test('IP addresses become 4 or 16 octets', () => {
    expect(hex(ipAddressOctets('127.0.0.1'))).toBe('7f000001');
    expect(hex(ipAddressOctets('::1'))).toBe('00000000000000000000000000000001');
    expect(hex(ipAddressOctets('::ffff:10.0.0.1'))).toBe('00000000000000000000ffff0a000001');
    expect(hex(ipAddressOctets('2001:db8::8:800:200c:417a'))).toBe('20010db80000000000080800200c417a');
    expect(hex(ipAddressOctets('0:0:0:0:0:0:0:1'))).toBe('00000000000000000000000000000001');
    expect(() => ipAddressOctets('localhost')).toThrow(/not an IP address/);
  });
});

describe('createCa', () => {
  test("Node's X509Certificate parses it: self-signed CA, P-256 key in PKCS#8, 16-byte positive serial", () => {
    const before = Date.now();
    const created = createCa({ commonName: 'lambda-mesh Consul CA dc1', validityDays: 3650 });
    const cert = new crypto.X509Certificate(created.certificatePem);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toBe('CN=lambda-mesh Consul CA dc1');
    expect(cert.issuer).toBe(cert.subject);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.checkIssued(cert)).toBe(true); // self-issued
    expect(cert.serialNumber).toMatch(/^[0-7][0-9A-F]{31}$/);
    expect(created.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const key = crypto.createPrivateKey(created.privateKeyPem);
    expect(key.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(cert.checkPrivateKey(key)).toBe(true);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    // Validity: back-dated by the clock-skew allowance, 10 years long; DER times have whole seconds.
    const validFrom = Date.parse(cert.validFrom);
    const validTo = Date.parse(cert.validTo);
    expect(Math.abs(validFrom - (before - CLOCK_SKEW_MS))).toBeLessThan(2000);
    expect(Math.abs(validTo - (before + 3650 * DAY_MS))).toBeLessThan(2000);
  });

  test('every certificate gets a new serial', () => {
    expect(new crypto.X509Certificate(ca.certificatePem).serialNumber).not.toBe(new crypto.X509Certificate(otherCa.certificatePem).serialNumber);
  });

  test('GeneralizedTime validity (after 2049) parses', () => {
    const longLived = createCa({ commonName: 'long', validityDays: 365 * 40 });
    const cert = new crypto.X509Certificate(longLived.certificatePem);
    expect(new Date(Date.parse(cert.validTo)).getUTCFullYear()).toBeGreaterThanOrEqual(2050);
    const leaf = new crypto.X509Certificate(serverCertificate(longLived, 'dc1', 365 * 35).certificatePem);
    expect(new Date(Date.parse(leaf.validTo)).getUTCFullYear()).toBeGreaterThanOrEqual(2050);
    expect(leaf.verify(cert.publicKey)).toBe(true);
  });

  test('fails when validityDays is not a positive integer', () => {
    expect(() => createCa({ commonName: 'x', validityDays: 0 })).toThrow(/validityDays must be a positive integer/);
  });
});

describe('createServerCertificate', () => {
  const caCert = new crypto.X509Certificate(ca.certificatePem);
  const cert = new crypto.X509Certificate(server.certificatePem);

  test('is signed by the CA and names server.dc1.consul, localhost and 127.0.0.1', () => {
    expect(cert.verify(caCert.publicKey)).toBe(true);
    // checkIssued reads "this certificate was issued by the argument" (name, key identifier and issuer key usage).
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.issuer).toBe('CN=lambda-mesh Consul CA dc1');
    expect(cert.subject).toBe('CN=server.dc1.consul');
    expect(cert.subjectAltName).toBe('DNS:server.dc1.consul, DNS:localhost, IP Address:127.0.0.1');
    expect(cert.checkHost('server.dc1.consul')).toBe('server.dc1.consul');
    expect(cert.checkHost('server.dc2.consul')).toBeUndefined();
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkPrivateKey(crypto.createPrivateKey(server.privateKeyPem))).toBe(true);
    // X509Certificate.keyUsage is the extended key usage list.
    expect(cert.keyUsage).toEqual([Oid.SERVER_AUTH, Oid.CLIENT_AUTH]);
    expect(Math.abs(Date.parse(cert.validTo) - (Date.now() + 365 * DAY_MS))).toBeLessThan(5000);
    expect(Date.parse(cert.validFrom)).toBeLessThan(Date.now() - CLOCK_SKEW_MS + 5000);
  });

  test('does not verify under another CA with the same name', () => {
    const other = new crypto.X509Certificate(otherCa.certificatePem);
    expect(cert.verify(other.publicKey)).toBe(false);
    expect(cert.checkIssued(other)).toBe(false); // same name, but the authority key identifier differs
  });

  test('never outlives its CA', () => {
    const shortCa = createCa({ commonName: 'short', validityDays: 10 });
    const leaf = new crypto.X509Certificate(serverCertificate(shortCa, 'dc1', 365).certificatePem);
    expect(leaf.validTo).toBe(new crypto.X509Certificate(shortCa.certificatePem).validTo);
  });

  test('fails when the CA key does not match the CA certificate', () => {
    expect(() => serverCertificate({ certificatePem: ca.certificatePem, privateKeyPem: otherCa.privateKeyPem })).toThrow(
      /CA private key does not match/,
    );
  });

  test('fails when the issuer is not a CA', () => {
    expect(() => serverCertificate(server)).toThrow(/not a CA/);
  });

  test('a CA certificate recreated for the same key still validates certificates issued before', () => {
    const recreated = recreateCaCertificate({ commonName: 'lambda-mesh Consul CA dc1', validityDays: 3650, privateKeyPem: ca.privateKeyPem });
    const recreatedCert = new crypto.X509Certificate(recreated.certificatePem);
    expect(recreatedCert.serialNumber).not.toBe(caCert.serialNumber);
    expect(cert.checkIssued(recreatedCert)).toBe(true);
    expect(cert.verify(recreatedCert.publicKey)).toBe(true);
  });
});

describe('a real TLS handshake on 127.0.0.1 (mutual TLS, as between Consul servers)', () => {
  interface HandshakeResult {
    readonly clientAuthorized: boolean;
    readonly serverAuthorized: boolean;
    readonly echoed: string;
  }

  /** Starts a TLS echo server with the server certificate that requires a client certificate from the CA. */
  async function withServer<T>(run: (port: number, serverAuthorized: () => boolean | undefined) => Promise<T>): Promise<T> {
    let authorized: boolean | undefined;
    const tlsServer = tls.createServer({ key: server.privateKeyPem, cert: server.certificatePem, ca: [ca.certificatePem], requestCert: true, rejectUnauthorized: true }, (socket) => {
      authorized = socket.authorized;
      socket.pipe(socket);
    });
    // Handshakes the negative tests abort show up here; they are the expected outcome, not a test failure.
    tlsServer.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
    try {
      return await run((tlsServer.address() as AddressInfo).port, () => authorized);
    } finally {
      await new Promise<void>((resolve) => tlsServer.close(() => resolve()));
    }
  }

  function connect(port: number, options: { trust: CertificateAndKey; servername: string }): Promise<{ authorized: boolean; echoed: string }> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port,
        ca: [options.trust.certificatePem],
        servername: options.servername,
        // The server certificate doubles as the client certificate: its extKeyUsage has clientAuth.
        key: server.privateKeyPem,
        cert: server.certificatePem,
      });
      socket.once('secureConnect', () => socket.write('ping'));
      socket.once('data', (data: Buffer) => {
        resolve({ authorized: socket.authorized, echoed: data.toString() });
        socket.end();
      });
      socket.once('error', reject);
    });
  }

  test('both sides verify each other and data flows', async () => {
    const result = await withServer<HandshakeResult>(async (port, serverAuthorized) => {
      const client = await connect(port, { trust: ca, servername: 'server.dc1.consul' });
      return { clientAuthorized: client.authorized, serverAuthorized: serverAuthorized() === true, echoed: client.echoed };
    });
    expect(result).toEqual({ clientAuthorized: true, serverAuthorized: true, echoed: 'ping' });
  });

  test('fails certificate verification when the client trusts a different CA', async () => {
    await withServer(async (port) => {
      // OpenSSL sends the chain it builds from the server's `ca` (leaf + CA), so the client sees an untrusted
      // self-signed CA; a server sending only the leaf would give UNABLE_TO_VERIFY_LEAF_SIGNATURE instead.
      await expect(connect(port, { trust: otherCa, servername: 'server.dc1.consul' })).rejects.toMatchObject({
        code: expect.stringMatching(/^(SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)$/),
      });
    });
  });

  test('fails hostname verification for server.dc2.consul', async () => {
    await withServer(async (port) => {
      await expect(connect(port, { trust: ca, servername: 'server.dc2.consul' })).rejects.toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    });
  });
});

// OpenSSL is a second, independent parser and verifier. It is used when installed; when it is not, the skipped
// test says so in the test report instead of passing without checking anything.
const openssl = spawnSync('openssl', ['version'], { encoding: 'utf8' });
const hasOpenssl = openssl.status === 0;

describe(`OpenSSL cross-checks (${hasOpenssl ? openssl.stdout.trim() : 'openssl is not installed here'})`, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'x509-test-'));
  const file = (name: string, content: string): string => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, content);
    return p;
  };
  const caFile = file('ca.pem', ca.certificatePem);
  const serverFile = file('server.pem', server.certificatePem);
  const otherCaFile = file('other-ca.pem', otherCa.certificatePem);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const run = (args: string[]): { status: number | null; out: string } => {
    const r = spawnSync('openssl', args, { encoding: 'utf8' });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  };
  const opensslTest = hasOpenssl ? test : test.skip;

  opensslTest('openssl x509 -noout -text shows a v3 ecdsa-with-SHA256 CA with critical basicConstraints and keyUsage', () => {
    const text = execFileSync('openssl', ['x509', '-noout', '-text', '-in', caFile], { encoding: 'utf8' });
    expect(text).toContain('Version: 3 (0x2)');
    expect(text).toContain('Signature Algorithm: ecdsa-with-SHA256');
    expect(text).toContain('ASN1 OID: prime256v1');
    expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/);
    expect(text).toContain('X509v3 Subject Key Identifier');
  });

  opensslTest('openssl x509 -noout -text shows the server certificate extensions: EKU server+client, SANs, key identifiers', () => {
    const text = execFileSync('openssl', ['x509', '-noout', '-text', '-in', serverFile], { encoding: 'utf8' });
    expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment/);
    expect(text).toMatch(/X509v3 Extended Key Usage:\s*\n\s+TLS Web Server Authentication, TLS Web Client Authentication/);
    expect(text).toMatch(/X509v3 Subject Alternative Name:\s*\n\s+DNS:server.dc1.consul, DNS:localhost, IP Address:127.0.0.1/);
    const ski = /X509v3 Subject Key Identifier:\s*\n\s+([0-9A-F:]+)/.exec(execFileSync('openssl', ['x509', '-noout', '-text', '-in', caFile], { encoding: 'utf8' }))?.[1];
    expect(ski).toBeDefined();
    expect(text).toMatch(new RegExp(`X509v3 Authority Key Identifier:\\s*\\n\\s+(keyid:)?${ski}`));
  });

  opensslTest('openssl verify -x509_strict accepts the server certificate for purposes sslserver and sslclient', () => {
    for (const purpose of ['sslserver', 'sslclient']) {
      expect(run(['verify', '-x509_strict', '-purpose', purpose, '-CAfile', caFile, serverFile])).toEqual({ status: 0, out: `${serverFile}: OK\n` });
    }
  });

  opensslTest('openssl verify rejects the server certificate under a different CA', () => {
    const result = run(['verify', '-CAfile', otherCaFile, serverFile]);
    expect(result.status).not.toBe(0);
    expect(result.out).toMatch(/unable to get local issuer certificate|certificate signature failure/);
  });
});
