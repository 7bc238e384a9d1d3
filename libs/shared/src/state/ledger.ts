import type { Redis } from 'ioredis';
import { z } from 'zod';
import { NodeCapacity, Reservation } from '../resources/limits';
import { RedisKeys } from './redis-keys';
import { defineScript, parseHash } from './scripts';

const reservationSchema: z.ZodType<Reservation> = z.object({
  cpuScore: z.number(),
  memoryMb: z.number(),
  gpuScore: z.number(),
  gpuMemoryGb: z.number(),
  at: z.number().optional(),
});

export type ReserveOutcome =
  | { ok: true }
  | { ok: false; reason: 'DUPLICATE' | 'TASKS' | 'CPU' | 'MEMORY' | 'GPU' | 'GPU_MEMORY'; message: string };

/**
 * Atomically: refuse a task id already held, then refuse when the sum of every held
 * reservation plus this one would pass a node total; else record it. One script, so
 * concurrent admissions (several gateway calls, several replicas) never overcommit.
 */
const RESERVE = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return {'DUPLICATE', '0'} end
local vals = redis.call('HVALS', KEYS[1])
if #vals >= tonumber(ARGV[3]) then return {'TASKS', tostring(#vals)} end
local req = cjson.decode(ARGV[2])
local cpu, mem, gpu, gmem = 0, 0, 0, 0
for _, v in ipairs(vals) do
  -- An unreadable entry still holds its slot (counted above) but no resources.
  local ok, r = pcall(cjson.decode, v)
  if ok and type(r) == 'table' then
    cpu = cpu + (tonumber(r.cpuScore) or 0); mem = mem + (tonumber(r.memoryMb) or 0)
    gpu = gpu + (tonumber(r.gpuScore) or 0); gmem = gmem + (tonumber(r.gpuMemoryGb) or 0)
  end
end
if cpu + req.cpuScore > tonumber(ARGV[4]) + 1e-6 then return {'CPU', tostring(cpu)} end
if mem + req.memoryMb > tonumber(ARGV[5]) then return {'MEMORY', tostring(mem)} end
if gpu + req.gpuScore > tonumber(ARGV[6]) + 1e-6 then return {'GPU', tostring(gpu)} end
if gmem + req.gpuMemoryGb > tonumber(ARGV[7]) then return {'GPU_MEMORY', tostring(gmem)} end
-- Stamped with Redis's clock, the one every process compares against.
local now = redis.call('TIME')
req.at = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(req))
return {'OK', '0'}
`;

export interface LedgerTotals {
  tasks: number;
  cpuScore: number;
  memoryMb: number;
  gpuScore: number;
  gpuMemoryGb: number;
}

function outcome(code: string, used: number, taskId: string, r: Reservation, node: NodeCapacity): ReserveOutcome {
  switch (code) {
    case 'OK':
      return { ok: true };
    case 'DUPLICATE':
      return { ok: false, reason: 'DUPLICATE', message: `task ${taskId} is already in flight on this node` };
    case 'TASKS':
      return { ok: false, reason: 'TASKS', message: `node busy: ${used} of ${node.maxTasks} task slots in use` };
    case 'CPU':
      return {
        ok: false,
        reason: 'CPU',
        message: `node busy: cpu score ${used.toFixed(0)} of ${node.cpuScore} in use, the task asks ${r.cpuScore.toFixed(0)}`,
      };
    case 'MEMORY':
      return { ok: false, reason: 'MEMORY', message: `node busy: ${used} MB of ${node.memoryGb * 1024} MB memory in use, the task needs ${r.memoryMb} MB` };
    case 'GPU':
      return { ok: false, reason: 'GPU', message: `node busy: gpu score ${used} of ${node.gpuScore} in use` };
    default:
      return { ok: false, reason: 'GPU_MEMORY', message: `node busy: ${used} GB of ${node.gpuMemoryGb} GB GPU memory in use` };
  }
}

/**
 * The node's one resource ledger (hash taskId -> JSON Reservation): what every accepted,
 * unfinished task holds, for the gateway and every executor.
 * Created by the gateway's admission (reserve, atomic against the node's totals);
 * deleted (release) when the task is over for the node: by the gateway once its result
 * is delivered, refused or given up, or its admission rolled back, and by the executors'
 * reconciler for a task the pool never heard accepted. Never updated in place.
 */
export class ResourceLedger {
  private readonly key: string;
  private readonly reserveScript: (...args: (string | number)[]) => Promise<[string, string]>;

  constructor(
    private readonly redis: Redis,
    keys: RedisKeys,
  ) {
    this.key = keys.ledger;
    this.reserveScript = defineScript<[string, string]>(redis, 'hivemindReserve', 1, RESERVE);
  }

  async reserve(taskId: string, r: Reservation, node: NodeCapacity): Promise<ReserveOutcome> {
    const [code, used] = (await this.reserveScript(
      this.key,
      taskId,
      JSON.stringify(r),
      node.maxTasks,
      node.cpuScore,
      node.memoryGb * 1024,
      node.gpuScore,
      node.gpuMemoryGb,
    )) as [string, string];
    return outcome(code, Number(used), taskId, r, node);
  }

  /**
   * The same verdict as reserve() from a snapshot, without holding anything: a cheap
   * early answer. Only reserve() is authoritative.
   */
  async precheck(r: Reservation, node: NodeCapacity): Promise<ReserveOutcome> {
    return this.fits(await this.totals(), r, node);
  }

  /** reserve()'s verdict on the node's totals (from snapshot() or totals()) for a task asking `r`. */
  fits(t: LedgerTotals, r: Reservation, node: NodeCapacity): ReserveOutcome {
    if (t.tasks >= node.maxTasks) return outcome('TASKS', t.tasks, '', r, node);
    if (t.cpuScore + r.cpuScore > node.cpuScore + 1e-6) return outcome('CPU', t.cpuScore, '', r, node);
    if (t.memoryMb + r.memoryMb > node.memoryGb * 1024) return outcome('MEMORY', t.memoryMb, '', r, node);
    if (t.gpuScore + r.gpuScore > node.gpuScore + 1e-6) return outcome('GPU', t.gpuScore, '', r, node);
    if (t.gpuMemoryGb + r.gpuMemoryGb > node.gpuMemoryGb) return outcome('GPU_MEMORY', t.gpuMemoryGb, '', r, node);
    return { ok: true };
  }

  async release(taskId: string): Promise<boolean> {
    return (await this.redis.hdel(this.key, taskId)) > 0;
  }

  async holds(taskId: string): Promise<boolean> {
    return (await this.redis.hexists(this.key, taskId)) === 1;
  }

  /** Redis's clock, in ms (reservations are stamped with it). */
  async now(): Promise<number> {
    const [sec, usec] = await this.redis.time();
    return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
  }

  /** Every held reservation by task id. */
  async entries(): Promise<Map<string, Reservation>> {
    return parseHash(reservationSchema, await this.redis.hgetall(this.key));
  }

  async totals(): Promise<LedgerTotals> {
    return (await this.snapshot()).totals;
  }

  /** The task ids held and their totals, from one read. */
  async snapshot(): Promise<{ held: Set<string>; totals: LedgerTotals }> {
    const all = await this.redis.hgetall(this.key);
    // A malformed entry still holds a slot and no resources (as in the reserve script).
    const t: LedgerTotals = { tasks: Object.keys(all).length, cpuScore: 0, memoryMb: 0, gpuScore: 0, gpuMemoryGb: 0 };
    for (const r of parseHash(reservationSchema, all).values()) {
      t.cpuScore += r.cpuScore;
      t.memoryMb += r.memoryMb;
      t.gpuScore += r.gpuScore;
      t.gpuMemoryGb += r.gpuMemoryGb;
    }
    return { held: new Set(Object.keys(all)), totals: t };
  }

  /** True when a task asking the defaults would still fit. */
  hasRoom(t: LedgerTotals, node: NodeCapacity, smallest: Reservation): boolean {
    return (
      t.tasks < node.maxTasks &&
      t.cpuScore + smallest.cpuScore <= node.cpuScore + 1e-6 &&
      t.memoryMb + smallest.memoryMb <= node.memoryGb * 1024
    );
  }
}
