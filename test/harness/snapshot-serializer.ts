/**
 * Jest snapshot serializer (jest.config.js `snapshotSerializers`) that replaces asset hashes with
 * `[ASSET-HASH]`, so snapshots of synthesized templates change when the template changes, not when a
 * handler's source or a dependency version does.
 *
 * An asset hash is a run of exactly 64 lower-case hex digits (a SHA-256), wherever it appears: whole
 * strings, S3 keys (`<hash>.zip`), bootstrap bucket/repository names with `${AWS::AccountId}`, container
 * image tags and `sha256:` digests, and object keys. Anything else is printed as it is.
 */

type Serialize = Extract<jest.SnapshotSerializerPlugin, { serialize: unknown }>['serialize'];

/** What an asset hash is replaced with. */
export const ASSET_HASH_PLACEHOLDER = '[ASSET-HASH]';

// Neighbours are checked against lower-case hex only: CDK joins hashes to PascalCase names
// (`AssetParameters<hash>ArtifactHash...`), and those boundaries must still match.
const ASSET_HASH_SOURCE = '(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])';
const ASSET_HASH = new RegExp(ASSET_HASH_SOURCE);
const ASSET_HASH_GLOBAL = new RegExp(ASSET_HASH_SOURCE, 'g');

// Copies this serializer produced. The printer calls `test` again on every nested value of the copy;
// remembering them makes that a lookup instead of a rescan, and makes serialization idempotent.
const normalized = new WeakSet<object>();

/**
 * Returns a copy of `value` with every asset hash in strings and object keys replaced by `[ASSET-HASH]`.
 */
export function normalizeAssetHashes<T>(value: T): T {
  return normalizeValue(value) as T;
}

/**
 * True for strings, arrays and plain objects that contain an asset hash and are not already normalized.
 */
export function test(value: unknown): boolean {
  if (typeof value === 'string') {
    return ASSET_HASH.test(value);
  }
  if (!isContainer(value) || normalized.has(value)) {
    return false;
  }
  return containsAssetHash(value, new Set());
}

/**
 * Prints the normalized copy with the printer Jest passes in, so formatting stays Jest's own.
 */
export const serialize: Serialize = (value, config, indentation, depth, refs, printer) =>
  printer(normalizeValue(value), config, indentation, depth, refs);

function normalizeValue(value: unknown, copies = new Map<object, object>()): unknown {
  if (typeof value === 'string') {
    return value.replace(ASSET_HASH_GLOBAL, ASSET_HASH_PLACEHOLDER);
  }
  if (!isContainer(value) || normalized.has(value)) {
    return value;
  }
  const done = copies.get(value);
  if (done) {
    // A cycle: the copy keeps the same shape, so the printer can still show [Circular].
    return done;
  }
  if (Array.isArray(value)) {
    const copy: unknown[] = [];
    copies.set(value, copy);
    normalized.add(copy);
    for (const item of value) {
      copy.push(normalizeValue(item, copies));
    }
    return copy;
  }
  const copy: Record<string, unknown> = {};
  copies.set(value, copy);
  normalized.add(copy);
  for (const [key, item] of Object.entries(value)) {
    copy[key.replace(ASSET_HASH_GLOBAL, ASSET_HASH_PLACEHOLDER)] = normalizeValue(item, copies);
  }
  return copy;
}

function containsAssetHash(value: unknown, seen: Set<object>): boolean {
  if (typeof value === 'string') {
    return ASSET_HASH.test(value);
  }
  if (!isContainer(value) || seen.has(value) || normalized.has(value)) {
    return false;
  }
  seen.add(value);
  const entries = Array.isArray(value) ? value.map((item): [string, unknown] => ['', item]) : Object.entries(value);
  return entries.some(([key, item]) => ASSET_HASH.test(key) || containsAssetHash(item, seen));
}

// Only JSON-like data (templates, manifests) is rewritten; class instances keep their own printers.
function isContainer(value: unknown): value is Record<string, unknown> | unknown[] {
  if (Array.isArray(value)) {
    return true;
  }
  if (typeof value !== 'object' || value === null) {
    return false;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
