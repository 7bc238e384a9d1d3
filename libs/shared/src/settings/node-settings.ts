import { z } from 'zod';
import { NodeCapacity } from '../resources/limits';
import { SettingsOverrides } from '../state/settings';

/**
 * Settings the owner can change while the node runs (the dashboard's settings form):
 * how many tasks at once and how much of the machine stays the owner's. Config gives
 * the defaults; overrides live in one Redis hash that every service reads, so a change
 * reaches admission, the heartbeat and the executors without a restart.
 */
export interface NodeSettings {
  maxConcurrentTasks: number;
  ownerReservedCores: number;
  ownerReservedMemoryGb: number;
}

/** The machine side of capacity: what the node could give with nothing reserved (GPUs included). */
export type MachineCapacity = Omit<NodeCapacity, 'maxTasks'>;

/** Validates a change of settings; unknown fields are an error, so a typo is never ignored. */
export function settingsPatchSchema(machine: MachineCapacity) {
  return z
    .object({
      maxConcurrentTasks: z.number().int().min(1).max(256),
      ownerReservedCores: z
        .number()
        .min(0)
        .refine((v) => v < machine.cpuCores, { message: `must leave some of the ${machine.cpuCores} cores to tasks` }),
      ownerReservedMemoryGb: z
        .number()
        .int()
        .min(0)
        .refine((v) => v < machine.memoryGb, { message: `must leave at least 1 of the ${machine.memoryGb} GB to tasks` }),
    })
    .partial()
    .strict();
}

export type SettingsPatch = Partial<NodeSettings>;

/** Raised when a settings change is refused; `field` names what was wrong. */
export class SettingsError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/**
 * Capacity the node offers tasks: the machine's, minus what the owner keeps. The CPU
 * score shrinks in proportion to the cores given away; the pool sees whole cores.
 */
export function effectiveCapacity(machine: MachineCapacity, s: NodeSettings): NodeCapacity {
  const cpuCores = Math.max(0, machine.cpuCores - s.ownerReservedCores);
  const share = machine.cpuCores > 0 ? cpuCores / machine.cpuCores : 0;
  return {
    ...machine,
    cpuCores,
    cpuScore: Math.max(1, Math.round(machine.cpuScore * share)),
    memoryGb: Math.max(0, machine.memoryGb - s.ownerReservedMemoryGb),
    maxTasks: s.maxConcurrentTasks,
  };
}

/** Reads and changes the live settings (SettingsOverrides), falling back to the last known on a Redis blip. */
export class NodeSettingsStore {
  private last: NodeSettings;
  /** Built once: the machine does not change, and zod schemas are costly to build (this is read per admission). */
  private schema: ReturnType<typeof settingsPatchSchema> | null = null;

  constructor(
    private readonly overrides: SettingsOverrides,
    readonly machine: MachineCapacity,
    readonly defaults: NodeSettings,
  ) {
    this.last = { ...defaults };
  }

  /** Current settings: the defaults with the stored overrides on top. */
  async get(): Promise<NodeSettings> {
    const raw = await this.overrides.read();
    const out: NodeSettings = { ...this.defaults };
    const schema = (this.schema ??= settingsPatchSchema(this.machine));
    for (const [k, v] of Object.entries(raw)) {
      // A stored value that no longer fits the machine (e.g. fewer cores now) is ignored.
      const parsed = schema.safeParse({ [k]: Number(v) });
      if (parsed.success) Object.assign(out, parsed.data);
    }
    this.last = out;
    return out;
  }

  /** The last settings read, for callers that must not wait on Redis. */
  lastKnown(): NodeSettings {
    return { ...this.last };
  }

  async capacity(): Promise<NodeCapacity> {
    return effectiveCapacity(this.machine, await this.get());
  }

  /** Validates and stores a change; throws SettingsError naming the first bad field. */
  async update(patch: unknown): Promise<NodeSettings> {
    const parsed = (this.schema ??= settingsPatchSchema(this.machine)).safeParse(patch);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = issue.path.join('.') || (issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : 'settings');
      throw new SettingsError(field, issue.message);
    }
    const entries = Object.entries(parsed.data).filter(([, v]) => v !== undefined);
    await this.overrides.write(Object.fromEntries(entries.map(([k, v]) => [k, String(v)])));
    return this.get();
  }

  /** Drops every override: back to the config's defaults. */
  async reset(): Promise<NodeSettings> {
    await this.overrides.clear();
    return this.get();
  }
}
