/**
 * Comparing what Consul's HTTP API returns with what a handler wants to write. Consul's Go structs marshal their
 * zero values (`""`, `0`, `false`, `null`, `[]`, `{}`, a zero duration `"0s"`) where the request left a field out,
 * and map keys come back in any order: two bodies mean the same when they are equal with keys sorted and zero values
 * dropped.
 *
 * Runtime code: bundled into the handlers that talk to Consul (intentions, auth method).
 */

/** A JSON object as parsed from a Consul response. */
export type Json = Record<string, unknown>;

/** True for a JSON object (not an array, not null). */
export function isJsonObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** True for Go's zero value of any type as Consul marshals it, and for objects and arrays made only of them. */
export function isZeroValue(v: unknown): boolean {
  return (
    v === undefined || v === null || v === '' || v === false || v === 0 || v === '0s' ||
    (Array.isArray(v) && v.length === 0) || (isJsonObject(v) && Object.keys(v).every((k) => isZeroValue(v[k])))
  );
}

/** `value` as JSON with object keys sorted and zero values left out of objects (array items are kept in order). */
export function canonicalJson(value: unknown): string {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) {
      return v.map(strip);
    }
    if (isJsonObject(v)) {
      const out: Json = {};
      for (const k of Object.keys(v).sort()) {
        const s = strip(v[k]);
        if (!isZeroValue(s)) {
          out[k] = s;
        }
      }
      return out;
    }
    return v;
  };
  return JSON.stringify(strip(value)) ?? '';
}

/** Equal as Consul means it: {@link canonicalJson} of both is the same. */
export function sameConsulJson(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}
