/**
 * The sample feature store: `GET /features/<entity_id>` answers features derived from the id's SHA-256 (so every
 * model sees the same features for an entity without a database), `POST` stores an override.
 */
import { createHash } from 'node:crypto';
import {
  createJsonServer, entityIdFromPath, HEALTH_ROUTE, HttpError, isObject, type Logger, readJson, remember, type Reply,
  type Service,
} from './http';

/** The features the store answers, in the order the example model weighs them. */
export const FEATURE_NAMES = ['recency_days', 'orders_30d', 'avg_basket', 'tenure_years'] as const;

/** One entity's features. */
export type Features = Record<(typeof FEATURE_NAMES)[number], number>;

// Ids with this prefix never exist, so callers can test their not-found path.
const UNKNOWN_PREFIX = 'unknown-';

/** The features of an entity that has no override: big-endian 32-bit words of SHA-256(id), each reduced to a range. */
export function derivedFeatures(entityId: string): Features {
  const digest = createHash('sha256').update(entityId, 'utf8').digest();
  return {
    recency_days: digest.readUInt32BE(0) % 365,
    orders_30d: digest.readUInt32BE(4) % 20,
    avg_basket: (500 + (digest.readUInt32BE(8) % 20_000)) / 100,
    tenure_years: (digest.readUInt32BE(12) % 100) / 10,
  };
}

/** Defines the feature store's HTTP server; its overrides live in memory, at most MAX_ENTITIES of them. */
export function createFeatureStore(log: Logger): Service {
  const overrides = new Map<string, Features>();

  const knownId = (segment: string): string => {
    const id = entityIdFromPath(segment);
    if (id.startsWith(UNKNOWN_PREFIX)) {
      throw new HttpError(404, `no entity ${id}`);
    }
    return id;
  };

  const get = (id: string): Reply => ({ status: 200, body: { entity_id: id, features: overrides.get(id) ?? derivedFeatures(id) } });

  const update = (id: string, body: unknown): Reply => {
    const features = parseFeatures(body);
    remember(overrides, id, features);
    return { status: 200, body: { entity_id: id, features, updated: true } };
  };

  return createJsonServer('feature-store', [
    HEALTH_ROUTE,
    {
      path: /^\/features\/([^/]*)$/,
      methods: {
        GET: (_req, [segment]) => get(knownId(segment)),
        POST: async (req, [segment]) => {
          const id = knownId(segment);
          return update(id, await readJson(req));
        },
      },
    },
  ], log);
}

// Exactly the four features, each a finite number (JSON.parse reads 1e999 as Infinity).
function parseFeatures(body: unknown): Features {
  const given = isObject(body) ? body.features : undefined;
  if (!isObject(given)) {
    throw new HttpError(400, 'the body must be {"features": {...}}');
  }
  if (Object.keys(given).some((name) => !(FEATURE_NAMES as readonly string[]).includes(name))) {
    throw new HttpError(400, `features may only name ${FEATURE_NAMES.join(', ')}`);
  }
  const features = {} as Features;
  for (const name of FEATURE_NAMES) {
    const value = given[name];
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new HttpError(400, `features.${name} must be a finite number`);
    }
    features[name] = value;
  }
  return features;
}
