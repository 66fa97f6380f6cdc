/**
 * X.509 v3 certificates for the Consul servers' TLS, built with Node's `crypto` and a small DER encoder.
 *
 * Why no library: the handler runs as a custom resource Lambda bundled with esbuild, and everything it carries
 * is code that handles private keys. Node's `crypto` generates and signs; the only thing it lacks is a
 * certificate builder, and an RFC 5280 TBSCertificate with a fixed set of extensions is a few hundred bytes
 * of DER that this file writes and the tests check against OpenSSL's parser, `openssl verify` and a real
 * TLS handshake.
 *
 * @see https://www.rfc-editor.org/rfc/rfc5280 (certificate profile)
 * @see https://www.itu.int/rec/T-REC-X.690 (DER)
 */
import * as crypto from 'crypto';
import * as net from 'net';

/** A PEM certificate and its PKCS#8 PEM private key. */
export interface CertificateAndKey {
  readonly certificatePem: string;
  readonly privateKeyPem: string;
}

/** Options of {@link createCa}. */
export interface CaOptions {
  /** The subject (and issuer) common name. */
  readonly commonName: string;
  /** Days from now until the certificate expires. */
  readonly validityDays: number;
}

/** Options of {@link createServerCertificate}. */
export interface ServerCertificateOptions {
  /** The issuing CA: its certificate gives the issuer name and key identifier, its key signs. */
  readonly ca: CertificateAndKey;
  /** The subject common name. */
  readonly commonName: string;
  /** DNS subject alternative names. */
  readonly dnsNames: readonly string[];
  /** IP subject alternative names (IPv4 or IPv6). */
  readonly ipAddresses: readonly string[];
  /** Days from now until the certificate expires; never later than the CA's own expiry. */
  readonly validityDays: number;
}

/** How far `notBefore` is back-dated, so a peer whose clock runs slightly behind accepts a fresh certificate. */
export const CLOCK_SKEW_MS = 5 * 60 * 1000;

const DAY_MS = 24 * 60 * 60 * 1000;

/** Object identifiers used below. */
export const Oid = {
  ECDSA_WITH_SHA256: '1.2.840.10045.4.3.2',
  COMMON_NAME: '2.5.4.3',
  SUBJECT_KEY_IDENTIFIER: '2.5.29.14',
  KEY_USAGE: '2.5.29.15',
  SUBJECT_ALT_NAME: '2.5.29.17',
  BASIC_CONSTRAINTS: '2.5.29.19',
  AUTHORITY_KEY_IDENTIFIER: '2.5.29.35',
  EXT_KEY_USAGE: '2.5.29.37',
  SERVER_AUTH: '1.3.6.1.5.5.7.3.1',
  CLIENT_AUTH: '1.3.6.1.5.5.7.3.2',
} as const;

/** Bit positions of the KeyUsage BIT STRING (RFC 5280 4.2.1.3). */
export enum KeyUsageBit {
  DIGITAL_SIGNATURE = 0,
  KEY_ENCIPHERMENT = 2,
  KEY_CERT_SIGN = 5,
  CRL_SIGN = 6,
}

// ---------------------------------------------------------------------------------------------------------------
// DER encoder (X.690): only the types a certificate needs.
// ---------------------------------------------------------------------------------------------------------------

/** DER tag bytes (universal class unless noted). */
const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Encodes a length in the definite form: short for < 128, else long with the fewest octets. */
export function derLength(length: number): Buffer {
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new Error(`DER length must be a non-negative integer, got ${length}`);
  }
  if (length < 0x80) {
    return Buffer.from([length]);
  }
  const octets: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) {
    octets.unshift(rest % 256);
  }
  return Buffer.from([0x80 | octets.length, ...octets]);
}

/** A tag-length-value element. */
export function derTlv(tag: number, content: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([tag]), derLength(content.length), content]);
}

/** SEQUENCE of already-encoded elements, in order. */
export function derSequence(...elements: readonly Uint8Array[]): Buffer {
  return derTlv(Tag.SEQUENCE, Buffer.concat(elements));
}

/** SET OF already-encoded elements, sorted by their encodings as DER requires (X.690 11.6). */
export function derSet(...elements: readonly Uint8Array[]): Buffer {
  const sorted = [...elements].map((e) => Buffer.from(e)).sort((a, b) => Buffer.compare(a, b));
  return derTlv(Tag.SET, Buffer.concat(sorted));
}

/**
 * INTEGER: a non-negative safe integer, or the big-endian magnitude of a non-negative number. Leading zero octets
 * are dropped and one is added back when the high bit is set, so the value reads as positive in two's complement.
 */
export function derInteger(value: number | Uint8Array): Buffer {
  let magnitude: Buffer;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new Error(`DER INTEGER supports non-negative safe integers, got ${value}`);
    }
    const octets: number[] = [];
    for (let rest = value; rest > 0; rest = Math.floor(rest / 256)) {
      octets.unshift(rest % 256);
    }
    magnitude = Buffer.from(octets);
  } else {
    magnitude = Buffer.from(value);
  }
  let start = 0;
  while (start < magnitude.length && magnitude[start] === 0) {
    start++;
  }
  let content = magnitude.subarray(start);
  if (content.length === 0) {
    content = Buffer.from([0]);
  } else if ((content[0] & 0x80) !== 0) {
    content = Buffer.concat([Buffer.from([0]), content]);
  }
  return derTlv(Tag.INTEGER, content);
}

/** OBJECT IDENTIFIER from dotted notation: the first two arcs share one octet group, each arc is base-128. */
export function derOid(dotted: string): Buffer {
  const arcs = dotted.split('.').map((a) => {
    if (!/^\d+$/.test(a)) {
      throw new Error(`invalid OID ${JSON.stringify(dotted)}`);
    }
    return Number(a);
  });
  if (arcs.length < 2 || arcs[0] > 2 || (arcs[0] < 2 && arcs[1] > 39) || !arcs.every((a) => Number.isSafeInteger(a))) {
    throw new Error(`invalid OID ${JSON.stringify(dotted)}`);
  }
  const octets: number[] = [];
  for (const arc of [arcs[0] * 40 + arcs[1], ...arcs.slice(2)]) {
    const group: number[] = [arc % 128];
    for (let rest = Math.floor(arc / 128); rest > 0; rest = Math.floor(rest / 128)) {
      group.unshift(0x80 | (rest % 128));
    }
    octets.push(...group);
  }
  return derTlv(Tag.OID, Buffer.from(octets));
}

/** BIT STRING of whole octets (keys, signatures). */
export function derBitString(bytes: Uint8Array): Buffer {
  return derTlv(Tag.BIT_STRING, Buffer.concat([Buffer.from([0]), bytes]));
}

/**
 * BIT STRING of named bits (X.690 11.2.2): bit 0 is the most significant bit of the first octet, and trailing
 * zero bits are removed, so e.g. digitalSignature+keyEncipherment encodes as `03 02 05 a0`.
 */
export function derNamedBits(bits: readonly number[]): Buffer {
  if (bits.length === 0) {
    return derTlv(Tag.BIT_STRING, Buffer.from([0]));
  }
  const highest = Math.max(...bits);
  const octets = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (const bit of bits) {
    if (!Number.isInteger(bit) || bit < 0) {
      throw new Error(`invalid named bit ${bit}`);
    }
    octets[Math.floor(bit / 8)] |= 0x80 >> (bit % 8);
  }
  const unusedBits = 7 - (highest % 8);
  return derTlv(Tag.BIT_STRING, Buffer.concat([Buffer.from([unusedBits]), octets]));
}

/** OCTET STRING. */
export function derOctetString(bytes: Uint8Array): Buffer {
  return derTlv(Tag.OCTET_STRING, bytes);
}

/** BOOLEAN: DER writes TRUE as 0xff. */
export function derBoolean(value: boolean): Buffer {
  return derTlv(Tag.BOOLEAN, Buffer.from([value ? 0xff : 0x00]));
}

/** UTF8String. */
export function derUtf8String(value: string): Buffer {
  return derTlv(Tag.UTF8_STRING, Buffer.from(value, 'utf8'));
}

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** PrintableString: only the X.680 printable repertoire. */
export function derPrintableString(value: string): Buffer {
  if (!PRINTABLE.test(value)) {
    throw new Error(`${JSON.stringify(value)} has characters outside PrintableString`);
  }
  return derTlv(Tag.PRINTABLE_STRING, Buffer.from(value, 'ascii'));
}

/**
 * A DirectoryString for a name attribute. RFC 5280 4.1.2.4 allows PrintableString or UTF8String; PrintableString
 * when it fits is what OpenSSL and most CAs write, and keeps the issuer name byte-identical across tools.
 */
export function derDirectoryString(value: string): Buffer {
  return PRINTABLE.test(value) ? derPrintableString(value) : derUtf8String(value);
}

/**
 * A certificate validity time (RFC 5280 4.1.2.5): UTCTime `YYMMDDHHMMSSZ` for years through 2049,
 * GeneralizedTime `YYYYMMDDHHMMSSZ` from 2050 on; seconds precision, always UTC.
 */
export function derTime(date: Date): Buffer {
  const year = date.getUTCFullYear();
  if (year < 1950 || year > 9999) {
    throw new Error(`certificate time out of range: ${date.toISOString()}`);
  }
  const two = (n: number): string => String(n).padStart(2, '0');
  const rest = `${two(date.getUTCMonth() + 1)}${two(date.getUTCDate())}${two(date.getUTCHours())}${two(date.getUTCMinutes())}${two(date.getUTCSeconds())}Z`;
  return year < 2050
    ? derTlv(Tag.UTC_TIME, Buffer.from(`${two(year % 100)}${rest}`, 'ascii'))
    : derTlv(Tag.GENERALIZED_TIME, Buffer.from(`${year}${rest}`, 'ascii'));
}

/** `[n] EXPLICIT`: a constructed context tag wrapping a whole element. */
export function derExplicit(tagNumber: number, element: Uint8Array): Buffer {
  return derTlv(0xa0 | checkTagNumber(tagNumber), element);
}

/** `[n] IMPLICIT` of a primitive type: the context tag replaces the type's own tag over the same content. */
export function derImplicit(tagNumber: number, content: Uint8Array): Buffer {
  return derTlv(0x80 | checkTagNumber(tagNumber), content);
}

function checkTagNumber(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 30) {
    throw new Error(`context tag number must be 0..30, got ${n}`);
  }
  return n;
}

// ---------------------------------------------------------------------------------------------------------------
// DER reader: just enough to take a certificate apart (issuer name, key identifier) and SubjectPublicKeyInfo.
// ---------------------------------------------------------------------------------------------------------------

/** One element of a DER buffer: offsets into that buffer. */
interface DerElement {
  readonly tag: number;
  readonly start: number;
  readonly contentStart: number;
  readonly end: number;
}

function readElement(buf: Buffer, offset: number): DerElement {
  if (offset + 2 > buf.length) {
    throw new Error('truncated DER');
  }
  const tag = buf[offset];
  if ((tag & 0x1f) === 0x1f) {
    throw new Error('high-tag-number DER form is not supported');
  }
  const first = buf[offset + 1];
  let length = first;
  let contentStart = offset + 2;
  if (first & 0x80) {
    const count = first & 0x7f;
    if (count === 0 || count > 4 || contentStart + count > buf.length) {
      throw new Error('unsupported DER length');
    }
    length = 0;
    for (let i = 0; i < count; i++) {
      length = length * 256 + buf[contentStart + i];
    }
    contentStart += count;
  }
  const end = contentStart + length;
  if (end > buf.length) {
    throw new Error('truncated DER');
  }
  return { tag, start: offset, contentStart, end };
}

function readChildren(buf: Buffer, parent: DerElement): DerElement[] {
  const children: DerElement[] = [];
  for (let offset = parent.contentStart; offset < parent.end; ) {
    const child = readElement(buf, offset);
    children.push(child);
    offset = child.end;
  }
  return children;
}

/** The parts of a certificate that an issued certificate refers to. */
interface IssuerInfo {
  /** The subject Name exactly as encoded, to become the issued certificate's issuer. */
  readonly subjectName: Buffer;
  /** The subjectKeyIdentifier extension's value, to become the issued certificate's authorityKeyIdentifier. */
  readonly keyIdentifier: Buffer;
}

function issuerInfo(certificate: crypto.X509Certificate): IssuerInfo {
  const der = certificate.raw;
  const tbs = readChildren(der, readElement(der, 0))[0];
  if (!tbs) {
    throw new Error('CA certificate has no TBSCertificate');
  }
  const fields = readChildren(der, tbs);
  // version is `[0] EXPLICIT` and optional: the fixed fields after it shift by one when present.
  const shift = fields[0]?.tag === 0xa0 ? 1 : 0;
  const subject = fields[4 + shift];
  if (!subject) {
    throw new Error('CA certificate has no subject');
  }
  const skiOid = derOid(Oid.SUBJECT_KEY_IDENTIFIER);
  let keyIdentifier: Buffer | undefined;
  const extensions = fields.find((f) => f.tag === 0xa3);
  if (extensions) {
    const list = readChildren(der, extensions)[0];
    for (const extension of list ? readChildren(der, list) : []) {
      const parts = readChildren(der, extension);
      const id = parts[0];
      const value = parts[parts.length - 1];
      if (id && value && der.subarray(id.start, id.end).equals(skiOid)) {
        const inner = readElement(der, value.contentStart);
        keyIdentifier = Buffer.from(der.subarray(inner.contentStart, inner.end));
      }
    }
  }
  return {
    subjectName: Buffer.from(der.subarray(subject.start, subject.end)),
    // A CA without the extension (not one of ours) still gets a usable identifier, computed the same way.
    keyIdentifier: keyIdentifier ?? keyIdentifierOf(certificate.publicKey),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Certificates.
// ---------------------------------------------------------------------------------------------------------------

/** A Name with a single CN attribute. */
function nameWithCommonName(commonName: string): Buffer {
  if (commonName.length === 0 || commonName.length > 64) {
    // ub-common-name (RFC 5280 appendix A).
    throw new Error(`common name must have 1..64 characters, got ${JSON.stringify(commonName)}`);
  }
  return derSequence(derSet(derSequence(derOid(Oid.COMMON_NAME), derDirectoryString(commonName))));
}

/**
 * The key identifier of RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING's value.
 * SHA-1 here is an identifier that chain building matches on, not a security function.
 */
export function keyIdentifierOf(publicKey: crypto.KeyObject): Buffer {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const parts = readChildren(spki, readElement(spki, 0));
  const bitString = parts[1];
  if (!bitString || bitString.tag !== Tag.BIT_STRING) {
    throw new Error('SubjectPublicKeyInfo has no subjectPublicKey');
  }
  // Skip the unused-bits octet.
  return crypto.createHash('sha1').update(spki.subarray(bitString.contentStart + 1, bitString.end)).digest();
}

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  // DER omits a BOOLEAN that equals its DEFAULT (FALSE).
  return critical
    ? derSequence(derOid(oid), derBoolean(true), derOctetString(value))
    : derSequence(derOid(oid), derOctetString(value));
}

/** A random positive serial of exactly 16 octets (RFC 5280 4.1.2.2 allows up to 20). */
function randomSerial(): Buffer {
  const serial = crypto.randomBytes(16);
  // High bit clear: positive without a padding octet; low bit of the first octet set: no leading zero to strip.
  serial[0] = (serial[0] & 0x7f) | 0x01;
  return serial;
}

/** The IP address as the octets an iPAddress GeneralName carries (4 for IPv4, 16 for IPv6). */
export function ipAddressOctets(address: string): Buffer {
  const family = net.isIP(address);
  if (family === 4) {
    return Buffer.from(address.split('.').map(Number));
  }
  if (family !== 6) {
    throw new Error(`${JSON.stringify(address)} is not an IP address`);
  }
  let text = address.split('%')[0];
  // An IPv4 tail (::ffff:10.0.0.1) becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = v4[1].split('.').map(Number);
    text = `${text.slice(0, v4.index)}${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const groups = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const octets = Buffer.alloc(16);
  all.forEach((g, i) => octets.writeUInt16BE(parseInt(g, 16), i * 2));
  return octets;
}

interface TbsOptions {
  readonly issuerName: Buffer;
  readonly subjectName: Buffer;
  readonly subjectPublicKey: crypto.KeyObject;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly extensions: readonly Buffer[];
}

function signCertificate(tbsOptions: TbsOptions, signingKey: crypto.KeyObject): string {
  const signatureAlgorithm = derSequence(derOid(Oid.ECDSA_WITH_SHA256));
  const tbs = derSequence(
    derExplicit(0, derInteger(2)), // v3
    derInteger(randomSerial()),
    signatureAlgorithm,
    tbsOptions.issuerName,
    derSequence(derTime(tbsOptions.notBefore), derTime(tbsOptions.notAfter)),
    tbsOptions.subjectName,
    tbsOptions.subjectPublicKey.export({ type: 'spki', format: 'der' }),
    derExplicit(3, derSequence(...tbsOptions.extensions)),
  );
  // ECDSA signatures in X.509 are the DER Ecdsa-Sig-Value, which is Node's default `dsaEncoding`.
  const signature = crypto.sign('sha256', tbs, { key: signingKey, dsaEncoding: 'der' });
  return toPem('CERTIFICATE', derSequence(tbs, signatureAlgorithm, derBitString(signature)));
}

function toPem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

function validity(validityDays: number, notAfterLimit?: Date): { notBefore: Date; notAfter: Date } {
  if (!Number.isInteger(validityDays) || validityDays < 1) {
    throw new Error(`validityDays must be a positive integer, got ${validityDays}`);
  }
  // DER times have whole seconds: truncate, so what is encoded is exactly what was computed.
  const now = Math.floor(Date.now() / 1000) * 1000;
  let notAfter = new Date(now + validityDays * DAY_MS);
  if (notAfterLimit && notAfter > notAfterLimit) {
    notAfter = notAfterLimit;
  }
  return { notBefore: new Date(now - CLOCK_SKEW_MS), notAfter };
}

function newKeyPair(): crypto.KeyPairKeyObjectResult {
  // P-256: what Consul's own `consul tls` tooling generates, and supported by every TLS stack Consul talks to.
  return crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}

function pkcs8Pem(key: crypto.KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/**
 * Creates a self-signed CA: basicConstraints critical CA:TRUE pathlen:0 (it signs only leaf certificates),
 * keyUsage critical keyCertSign + cRLSign + digitalSignature, subjectKeyIdentifier.
 */
export function createCa(options: CaOptions): CertificateAndKey {
  const { publicKey, privateKey } = newKeyPair();
  return { certificatePem: selfSignedCaCertificate(options, publicKey, privateKey), privateKeyPem: pkcs8Pem(privateKey) };
}

/**
 * Issues a new self-signed CA certificate for an existing CA key. Certificates the key signed before stay valid
 * under the new certificate when the common name is the same (same subject, same key identifier).
 */
export function recreateCaCertificate(options: CaOptions & { readonly privateKeyPem: string }): CertificateAndKey {
  const privateKey = crypto.createPrivateKey(options.privateKeyPem);
  const publicKey = crypto.createPublicKey(privateKey);
  return { certificatePem: selfSignedCaCertificate(options, publicKey, privateKey), privateKeyPem: options.privateKeyPem };
}

function selfSignedCaCertificate(options: CaOptions, publicKey: crypto.KeyObject, privateKey: crypto.KeyObject): string {
  const name = nameWithCommonName(options.commonName);
  return signCertificate(
    {
      issuerName: name,
      subjectName: name,
      subjectPublicKey: publicKey,
      ...validity(options.validityDays),
      extensions: [
        extension(Oid.BASIC_CONSTRAINTS, true, derSequence(derBoolean(true), derInteger(0))),
        extension(
          Oid.KEY_USAGE,
          true,
          derNamedBits([KeyUsageBit.DIGITAL_SIGNATURE, KeyUsageBit.KEY_CERT_SIGN, KeyUsageBit.CRL_SIGN]),
        ),
        extension(Oid.SUBJECT_KEY_IDENTIFIER, false, derOctetString(keyIdentifierOf(publicKey))),
      ],
    },
    privateKey,
  );
}

/**
 * Creates a key pair and a certificate for it signed by `ca`: basicConstraints critical CA:FALSE, keyUsage critical
 * digitalSignature + keyEncipherment, extKeyUsage serverAuth + clientAuth (Consul servers present the same
 * certificate on both sides of server RPC), subjectAltName, subject and authority key identifiers.
 */
export function createServerCertificate(options: ServerCertificateOptions): CertificateAndKey {
  const caCertificate = new crypto.X509Certificate(options.ca.certificatePem);
  const caKey = crypto.createPrivateKey(options.ca.privateKeyPem);
  if (!caCertificate.ca) {
    throw new Error('the issuing certificate is not a CA');
  }
  if (!caCertificate.checkPrivateKey(caKey)) {
    throw new Error("the CA private key does not match the CA certificate's public key");
  }
  if (options.dnsNames.length + options.ipAddresses.length === 0) {
    throw new Error('a server certificate needs at least one subject alternative name');
  }
  const generalNames = [
    ...options.dnsNames.map((dns) => {
      if (!/^[A-Za-z0-9.*-]+$/.test(dns)) {
        throw new Error(`${JSON.stringify(dns)} is not a DNS name`);
      }
      return derImplicit(2, Buffer.from(dns, 'ascii')); // dNSName [2] IA5String
    }),
    ...options.ipAddresses.map((ip) => derImplicit(7, ipAddressOctets(ip))), // iPAddress [7] OCTET STRING
  ];
  const issuer = issuerInfo(caCertificate);
  const { publicKey, privateKey } = newKeyPair();
  const certificatePem = signCertificate(
    {
      issuerName: issuer.subjectName,
      subjectName: nameWithCommonName(options.commonName),
      subjectPublicKey: publicKey,
      // A certificate outliving its issuer would fail verification from that day on anyway.
      ...validity(options.validityDays, new Date(Date.parse(caCertificate.validTo))),
      extensions: [
        extension(Oid.BASIC_CONSTRAINTS, true, derSequence()),
        extension(Oid.KEY_USAGE, true, derNamedBits([KeyUsageBit.DIGITAL_SIGNATURE, KeyUsageBit.KEY_ENCIPHERMENT])),
        extension(Oid.EXT_KEY_USAGE, false, derSequence(derOid(Oid.SERVER_AUTH), derOid(Oid.CLIENT_AUTH))),
        extension(Oid.SUBJECT_ALT_NAME, false, derSequence(...generalNames)),
        extension(Oid.SUBJECT_KEY_IDENTIFIER, false, derOctetString(keyIdentifierOf(publicKey))),
        extension(Oid.AUTHORITY_KEY_IDENTIFIER, false, derSequence(derImplicit(0, issuer.keyIdentifier))),
      ],
    },
    caKey,
  );
  return { certificatePem, privateKeyPem: pkcs8Pem(privateKey) };
}
