/**
 * The sample result writer: models `POST /results` their scores, `GET /results/<entity_id>` reads the latest one
 * back. Results live in memory, at most MAX_ENTITIES entities.
 */
import {
  createJsonServer, entityId, entityIdFromPath, HEALTH_ROUTE, HttpError, isObject, type Logger, readJson, remember,
  type Service,
} from './http';

/** The latest result stored for an entity. */
export interface StoredResult {
  readonly entity_id: string;
  readonly score: number;
  readonly id: number;
  readonly stored_at: string;
}

/** Defines the result writer's HTTP server. */
export function createResultWriter(log: Logger): Service {
  const results = new Map<string, StoredResult>();
  let lastId = 0;

  return createJsonServer('result-writer', [
    HEALTH_ROUTE,
    {
      path: /^\/results$/,
      methods: {
        POST: async (req) => {
          const body = await readJson(req);
          if (!isObject(body)) {
            throw new HttpError(400, 'the body must be a JSON object {"entity_id", "score"}');
          }
          const id = entityId(body.entity_id);
          const score = body.score;
          // JSON.parse reads 1e999 as Infinity, which the range check rejects too.
          if (typeof score !== 'number' || !(score >= 0 && score <= 1)) {
            throw new HttpError(400, 'score must be a number from 0 to 1');
          }
          lastId += 1;
          remember(results, id, { entity_id: id, score, id: lastId, stored_at: new Date().toISOString() });
          return { status: 201, body: { stored: true, id: lastId } };
        },
      },
    },
    {
      path: /^\/results\/([^/]*)$/,
      methods: {
        GET: (_req, [segment]) => {
          const id = entityIdFromPath(segment);
          const result = results.get(id);
          if (result === undefined) {
            throw new HttpError(404, `no result for ${id}`);
          }
          return { status: 200, body: result };
        },
      },
    },
  ], log);
}
