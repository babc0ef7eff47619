/** test/support/thrown: runs a function that must throw a GantryError and returns it for assertions. */
import { expect } from 'vitest';
import { GantryError } from '../../src/errors/index.js';

export function thrown(fn: () => unknown): GantryError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GantryError);
    return err as GantryError;
  }
  throw new Error('expected a GantryError');
}
