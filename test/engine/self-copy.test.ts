import { describe, expect, it } from 'vitest';
import { sameSystem } from '../../src/engine/self-copy.js';

describe('same system (a copy onto itself is refused)', () => {
  it('asks each end for its tracking store: Databricks with or without Unity Catalog is one workspace', () => {
    const uc = { kind: 'databricks-uc', trackingStore: 'databricks', uri: 'https://ws.example.com' };
    const workspace = { kind: 'databricks', trackingStore: 'databricks', uri: 'https://ws.example.com/' };
    expect(sameSystem(uc, workspace)).toBe(true);
    expect(sameSystem(uc, { ...workspace, uri: 'https://other.example.com' })).toBe(false);
  });

  it('falls back to the kind: two formats in one place are two systems', () => {
    expect(sameSystem({ kind: 'mlflow', uri: 'http://localhost:5000' }, { kind: 'mlflow', uri: 'http://127.0.0.1:5000/' })).toBe(true);
    expect(sameSystem({ kind: 'bundle', uri: '/tmp/x' }, { kind: 'exim', uri: '/tmp/x' })).toBe(false);
  });
});
