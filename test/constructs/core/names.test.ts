import { compare } from '../../../constructs/core/names';

describe('compare', () => {
  test('orders by UTF-16 code units, as sort() without a comparator does, whatever the locale', () => {
    const names = ['model-b', 'Model-a', 'model-a', 'model_a', 'model-a-v10', 'model-a-v2', 'é', 'z'];
    expect([...names].sort(compare)).toEqual([...names].sort());
    const expected = ['Model-a', 'model-a', 'model-a-v10', 'model-a-v2', 'model-b', 'model_a', 'z', 'é'];
    expect([...names].sort(compare)).toEqual(expected);
  });

  test('sorts entries by key', () => {
    const entries: Array<[string, number]> = [['b', 1], ['a', 2], ['B', 3]];
    expect(entries.sort(([a], [b]) => compare(a, b)).map(([k]) => k)).toEqual(['B', 'a', 'b']);
  });

  test('is 0 only for equal strings', () => {
    expect(compare('a', 'a')).toBe(0);
    expect(compare('a', 'b')).toBeLessThan(0);
    expect(compare('b', 'a')).toBeGreaterThan(0);
  });
});
