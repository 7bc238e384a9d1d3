import { effectiveCapacity, settingsPatchSchema } from './node-settings';

const machine = { cpuCores: 8, cpuScore: 800, memoryGb: 16, gpuScore: 0, gpuMemoryGb: 0 };

describe('effectiveCapacity', () => {
  it('gives tasks the machine minus the owner reservation, with the score in proportion', () => {
    const c = effectiveCapacity(machine, { maxConcurrentTasks: 3, ownerReservedCores: 2, ownerReservedMemoryGb: 4 });
    expect(c).toEqual({ cpuCores: 6, cpuScore: 600, memoryGb: 12, gpuScore: 0, gpuMemoryGb: 0, maxTasks: 3 });
  });

  it('is the whole machine with nothing reserved', () => {
    const c = effectiveCapacity(machine, { maxConcurrentTasks: 1, ownerReservedCores: 0, ownerReservedMemoryGb: 0 });
    expect(c.cpuCores).toBe(8);
    expect(c.cpuScore).toBe(800);
    expect(c.memoryGb).toBe(16);
  });
});

describe('settingsPatchSchema', () => {
  const schema = settingsPatchSchema(machine);

  it('takes a partial change', () => {
    expect(schema.parse({ maxConcurrentTasks: 4 })).toEqual({ maxConcurrentTasks: 4 });
    expect(schema.parse({ ownerReservedCores: 1.5, ownerReservedMemoryGb: 2 })).toEqual({ ownerReservedCores: 1.5, ownerReservedMemoryGb: 2 });
  });

  it.each([
    [{ maxConcurrentTasks: 0 }, 'maxConcurrentTasks'],
    [{ maxConcurrentTasks: 2.5 }, 'maxConcurrentTasks'],
    [{ ownerReservedCores: 8 }, 'ownerReservedCores'],
    [{ ownerReservedCores: -1 }, 'ownerReservedCores'],
    [{ ownerReservedMemoryGb: 16 }, 'ownerReservedMemoryGb'],
    [{ maxConcurrentTasks: '3' }, 'maxConcurrentTasks'],
  ])('refuses %j, naming the field', (patch, field) => {
    const r = schema.safeParse(patch);
    expect(r.success).toBe(false);
    if (!r.success) expect(r.error.issues[0].path).toEqual([field]);
  });

  it('refuses an unknown field rather than ignoring it', () => {
    const r = schema.safeParse({ maxTasks: 3 });
    expect(r.success).toBe(false);
    if (!r.success) expect(r.error.issues[0].code).toBe('unrecognized_keys');
  });
});
