import { describeValue, LambdaMeshError } from '../../core/errors';
import { type HeaderMatch, type HttpMatch, HttpMethod } from '../types';

/** The HTTP methods an L7 rule can match (upper case), in the order messages list them. */
const HTTP_METHODS: readonly string[] = Object.values(HttpMethod);

/** An HTTP header field name (RFC 9110 token). */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * RE2 (Consul's and Envoy's regex engine) has no look-around and no back-references; a JavaScript regex that
 * uses them compiles here and is rejected by Consul at deploy time, so catch it at synth.
 */
const NOT_RE2 = /\(\?<?[=!]|\\[1-9]/;

/**
 * Checks an L7 match and returns it normalised (methods upper-case and sorted, so equal matches compare equal).
 *
 * @param location construct path for the message
 * @param field the field that holds the match, e.g. `allowFrom(model-a).http`
 */
export function validateHttpMatch(location: string, field: string, http: HttpMatch): HttpMatch {
  const fail = (sub: string, given: unknown, expected: string): never => {
    throw new LambdaMeshError({ location, field: `${field}.${sub}`, given: describeValue(given), expected });
  };

  const paths = (['pathExact', 'pathPrefix', 'pathRegex'] as const).filter((k) => http[k] !== undefined);
  if (paths.length > 1) {
    fail(paths[1], http[paths[1]], `at most one of pathExact, pathPrefix and pathRegex (${paths[0]} is already set)`);
  }
  for (const key of ['pathExact', 'pathPrefix'] as const) {
    const value = http[key];
    if (value !== undefined && (typeof value !== 'string' || !value.startsWith('/'))) {
      fail(key, value, "a path starting with '/'");
    }
  }
  if (http.pathRegex !== undefined) {
    checkRegex(http.pathRegex, (given, why) => fail('pathRegex', given, why));
  }

  let methods: string[] | undefined;
  if (http.methods !== undefined) {
    if (!Array.isArray(http.methods) || http.methods.length === 0) {
      fail('methods', http.methods, `a non-empty list of ${HTTP_METHODS.join(', ')}`);
    }
    http.methods.forEach((m, i) => {
      if (!HTTP_METHODS.includes(m)) {
        fail(`methods[${i}]`, m, `one of ${HTTP_METHODS.join(', ')} (upper case)`);
      }
      if (http.methods!.indexOf(m) !== i) {
        fail(`methods[${i}]`, m, 'each method once');
      }
    });
    methods = [...http.methods].sort();
  }

  let headers: HeaderMatch[] | undefined;
  if (http.headers !== undefined) {
    if (!Array.isArray(http.headers) || http.headers.length === 0) {
      fail('headers', http.headers, 'a non-empty list of header matches');
    }
    headers = http.headers.map((h, i) => validateHeader(h, (sub, given, expected) => fail(`headers[${i}]${sub}`, given, expected)));
  }

  if (paths.length === 0 && methods === undefined && headers === undefined) {
    fail('(match)', http, 'an L7 match with at least one of pathExact, pathPrefix, pathRegex, methods or headers (for a whole-connection rule, omit `http`)');
  }

  return {
    ...(http.pathExact !== undefined ? { pathExact: http.pathExact } : {}),
    ...(http.pathPrefix !== undefined ? { pathPrefix: http.pathPrefix } : {}),
    ...(http.pathRegex !== undefined ? { pathRegex: http.pathRegex } : {}),
    ...(methods ? { methods } : {}),
    ...(headers ? { headers } : {}),
  };
}

function validateHeader(h: HeaderMatch, fail: (sub: string, given: unknown, expected: string) => never): HeaderMatch {
  if (typeof h?.name !== 'string' || !HEADER_NAME.test(h.name)) {
    fail('.name', h?.name, 'an HTTP header name (letters, digits and !#$%&\'*+-.^_`|~)');
  }
  const matchers = (['exact', 'prefix', 'suffix', 'regex', 'present'] as const).filter((k) => h[k] !== undefined);
  if (matchers.length !== 1) {
    fail('', h, `exactly one of exact, prefix, suffix, regex or present (given: ${matchers.length === 0 ? 'none' : matchers.join(', ')})`);
  }
  if (h.regex !== undefined) {
    checkRegex(h.regex, (given, why) => fail('.regex', given, why));
  }
  if (h.present === false) {
    fail('.present', false, 'true (to match an absent header, use present: true with invert: true)');
  }
  return {
    name: h.name.toLowerCase(),
    ...(h.exact !== undefined ? { exact: h.exact } : {}),
    ...(h.prefix !== undefined ? { prefix: h.prefix } : {}),
    ...(h.suffix !== undefined ? { suffix: h.suffix } : {}),
    ...(h.regex !== undefined ? { regex: h.regex } : {}),
    ...(h.present !== undefined ? { present: h.present } : {}),
    ...(h.invert ? { invert: true } : {}),
  };
}

function checkRegex(value: string, fail: (given: unknown, why: string) => never): void {
  if (typeof value !== 'string' || value.length === 0) {
    fail(value, 'a non-empty RE2 regular expression');
  }
  try {
    new RegExp(value);
  } catch (e) {
    fail(value, `a valid RE2 regular expression (${(e as Error).message})`);
  }
  if (NOT_RE2.test(value)) {
    fail(value, 'an RE2 regular expression: no look-around ((?=, (?!, (?<=, (?<!) and no back-references (\\1), which Consul rejects');
  }
}

/** A canonical key for a normalised match, so equal matches compare equal. */
export function httpMatchKey(http: HttpMatch | undefined): string {
  return http === undefined ? 'L4' : JSON.stringify(http);
}

/** A short human rendering of a match for messages and summaries: `GET /features*`. */
export function describeHttpMatch(http: HttpMatch | undefined): string {
  if (http === undefined) {
    return 'any (L4)';
  }
  const parts: string[] = [];
  if (http.methods) {
    parts.push(http.methods.join('|'));
  }
  if (http.pathExact !== undefined) {
    parts.push(http.pathExact);
  } else if (http.pathPrefix !== undefined) {
    parts.push(`${http.pathPrefix}*`);
  } else if (http.pathRegex !== undefined) {
    parts.push(`~${http.pathRegex}`);
  }
  for (const h of http.headers ?? []) {
    parts.push(`[${h.invert ? '!' : ''}${h.name}]`);
  }
  return parts.join(' ');
}
