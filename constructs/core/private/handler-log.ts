/**
 * The log of the library's Lambda handlers: one JSON line per action, for CloudWatch Logs Insights. Entries name
 * objects and outcomes, never a token, key or certificate.
 *
 * Runtime code: bundled into each handler.
 */
export function log(entry: Readonly<Record<string, string | number>>): void {
  // eslint-disable-next-line no-console -- runtime Lambda code: stdout is its CloudWatch Logs stream.
  console.log(JSON.stringify(entry));
}
