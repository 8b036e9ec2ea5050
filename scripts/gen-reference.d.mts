// Types of scripts/gen-reference.mjs, for the tests that import it.
import type { z } from 'zod';

export const BEGIN: string;
export const END: string;

export interface FieldRow {
  path: string;
  type: string;
  default: string;
  env: string | undefined;
  description: string;
}

export function typeOf(schema: z.ZodType): string;
export function fieldRows(schema: z.ZodType, env?: (path: string) => string): FieldRow[];
export function undescribed(rows: readonly FieldRow[]): string[];
export function splice(page: string, generated: string, file: string): string;
export function renderPages(dir: string): Promise<{ path: string; expected: string; actual: string | undefined }[]>;
