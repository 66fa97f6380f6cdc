/**
 * Waiting on a condition that a stand-in's own events make true, instead of sleeping: `until(emitter, find)`
 * checks `find()` now and after every `'change'` the emitter emits, and fails naming `what` after `timeoutMs`.
 */
import type { EventEmitter } from 'events';

/** Resolves with the first defined value of `find()`, checked now and on every `'change'` of `emitter`. */
export function until<T>(emitter: EventEmitter, find: () => T | undefined, what: string, timeoutMs = 5000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const check = (): boolean => {
      const found = find();
      if (found === undefined) {
        return false;
      }
      emitter.off('change', onChange);
      clearTimeout(timer);
      resolve(found);
      return true;
    };
    const onChange = (): void => {
      check();
    };
    const timer = setTimeout(() => {
      emitter.off('change', onChange);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    emitter.on('change', onChange);
    check();
  });
}
