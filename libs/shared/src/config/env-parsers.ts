import { z } from 'zod';

/** Env parsers that say, in the error, what form the value should take. */

export const bool = (dflt: boolean) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return dflt;
      const s = v.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(s)) return true;
      if (['0', 'false', 'no', 'off'].includes(s)) return false;
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `expected true or false, got "${v}"` });
      return z.NEVER;
    });

export const num = (dflt: number | undefined, opts: { min?: number; max?: number; int?: boolean } = {}) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') {
        if (dflt === undefined) {
          ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'is required' });
          return z.NEVER;
        }
        return dflt;
      }
      const n = Number(v);
      const kind = opts.int ? 'an integer' : 'a number';
      const range =
        opts.min !== undefined && opts.max !== undefined
          ? ` between ${opts.min} and ${opts.max}`
          : opts.min !== undefined
            ? ` of at least ${opts.min}`
            : opts.max !== undefined
              ? ` of at most ${opts.max}`
              : '';
      if (
        !Number.isFinite(n) ||
        (opts.int && !Number.isInteger(n)) ||
        (opts.min !== undefined && n < opts.min) ||
        (opts.max !== undefined && n > opts.max)
      ) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: `expected ${kind}${range}, got "${v}"` });
        return z.NEVER;
      }
      return n;
    });

/** An optional number: undefined stays undefined (meaning "derive from the machine"). */
export const optNum = (opts: { min?: number; max?: number; int?: boolean } = {}) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return undefined;
      const parsed = num(0, opts).safeParse(v);
      if (!parsed.success) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: parsed.error.issues[0].message });
        return z.NEVER;
      }
      return parsed.data;
    });

export const str = (dflt: string) =>
  z
    .string()
    .optional()
    .transform((v) => (v === undefined || v === '' ? dflt : v));

export const optStr = () =>
  z
    .string()
    .optional()
    .transform((v) => (v === undefined || v === '' ? undefined : v));

/** host:port with a port in range. */
export const hostPort = (dflt: string) =>
  str(dflt).superRefine((v, ctx) => {
    const m = /^(.+):(\d{1,5})$/.exec(v);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `expected host:port (e.g. localhost:50051), got "${v}"` });
    }
  });

export const oneOf = <T extends string>(values: readonly T[], dflt: T) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return dflt;
      if ((values as readonly string[]).includes(v)) return v as T;
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `expected one of ${values.join(', ')}, got "${v}"` });
      return z.NEVER;
    });

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
}

/** Parses env with a schema; on failure throws one error listing every bad variable. */
export function parseEnv<S extends z.ZodTypeAny>(schema: S, env: Record<string, string | undefined>): z.output<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  const lines = result.error.issues.map((i) => `  ${i.path.join('.') || '(env)'}: ${i.message}`);
  throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
}
