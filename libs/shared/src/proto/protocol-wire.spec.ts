import * as pb from './generated/nodepool';

/**
 * Wire compatibility with the deployed Node Pool. Every expected byte string here was
 * worked out by hand from shared/spec/nodepool-protocol.md (tag = field << 3 | wire
 * type; floats are little-endian fixed32), so a wrong field number, type or order
 * fails the test.
 */
const hex = (u: Uint8Array) => Buffer.from(u).toString('hex').replace(/(..)(?!$)/g, '$1 ');
const bytes = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('messages the worker sends encode to the expected bytes', () => {
  it('LoginRequest: 1 username, 2 password', () => {
    expect(hex(pb.LoginRequest.encode({ username: 'al', password: 'pw' }).finish())).toBe('0a 02 61 6c 12 02 70 77');
  });

  it('GetBalanceRequest: 1 username, 2 token', () => {
    expect(hex(pb.GetBalanceRequest.encode({ username: 'al', token: 't' }).finish())).toBe('0a 02 61 6c 12 01 74');
  });

  it('RefreshTokenRequest: 1 old_token', () => {
    expect(hex(pb.RefreshTokenRequest.encode({ old_token: 't' }).finish())).toBe('0a 01 74');
  });

  it('RegisterWorkerNodeRequest: 1..9, then 12 gpu_name and 13 docker_status', () => {
    const msg = pb.RegisterWorkerNodeRequest.encode({
      node_id: 'n',
      hostname: 'h',
      cpu_cores: 2,
      memory_gb: 4,
      cpu_score: 200,
      gpu_score: 0,
      gpu_memory_gb: 0,
      location: 'l',
      port: 50053,
      gpu_name: 'g',
      docker_status: 'a',
    }).finish();
    // 0a node_id | 12 hostname | 18 cores=2 | 20 mem=4 | 28 score=200 (c8 01) | 42 location
    // | 48 port=50053 (85 87 03) | 62 gpu_name (field 12) | 6a docker_status (field 13)
    expect(hex(msg)).toBe('0a 01 6e 12 01 68 18 02 20 04 28 c8 01 42 01 6c 48 85 87 03 62 01 67 6a 01 61');
  });

  it('RunningStatusRequest: floats at 3..6 as fixed32, 7 docker_status, 8 running_tasks', () => {
    const msg = pb.RunningStatusRequest.encode({
      node_id: 'n',
      status: 'Idle',
      cpu_usage: 1.5,
      memory_usage: 50,
      gpu_usage: 0,
      gpu_memory_usage: 0,
      docker_status: 'a',
      running_tasks: 3,
    }).finish();
    expect(hex(msg)).toBe('0a 01 6e 12 04 49 64 6c 65 1d 00 00 c0 3f 25 00 00 48 42 3a 01 61 40 03');
  });

  it('TaskOutputUploadRequest: 1 task_id, 2 output, 3 token', () => {
    expect(hex(pb.TaskOutputUploadRequest.encode({ task_id: 't1', output: 'hi', token: 'k' }).finish())).toBe(
      '0a 02 74 31 12 02 68 69 1a 01 6b',
    );
  });

  it('TaskResultUploadRequest: 1 task_id, 2 result_zip (bytes), 3 token', () => {
    const msg = pb.TaskResultUploadRequest.encode({ task_id: 't1', result_zip: Buffer.from([1, 2]), token: 'k' }).finish();
    expect(hex(msg)).toBe('0a 02 74 31 12 02 01 02 1a 01 6b');
  });

  it('TaskUsageRequest: 1 task_id, 2..5 floats, 6 token', () => {
    const msg = pb.TaskUsageRequest.encode({
      task_id: '0',
      cpu_usage: 2,
      memory_usage: 0.25,
      gpu_usage: 0,
      gpu_memory_usage: 0,
      token: 'n',
    }).finish();
    expect(hex(msg)).toBe('0a 01 30 15 00 00 00 40 1d 00 00 80 3e 32 01 6e');
  });

  it('ExecuteTaskResponse and StopTaskExecutionResponse: 1 success, 2 message', () => {
    expect(hex(pb.ExecuteTaskResponse.encode({ success: true, message: 'ok' }).finish())).toBe('08 01 12 02 6f 6b');
    expect(hex(pb.StopTaskExecutionResponse.encode({ success: false, message: 'no' }).finish())).toBe('12 02 6e 6f');
  });
});

describe('messages the worker receives decode from hand-made bytes', () => {
  it('LoginResponse: 1 success, 2 message, 3 token', () => {
    expect(pb.LoginResponse.decode(bytes('08 01 12 02 6f 6b 1a 03 6a 77 74'))).toEqual({ success: true, message: 'ok', token: 'jwt' });
  });

  it('GetBalanceResponse: 3 balance is an int64', () => {
    expect(pb.GetBalanceResponse.decode(bytes('08 01 18 ac 02'))).toEqual({ success: true, message: '', balance: 300 });
  });

  it('RefreshTokenResponse: 3 new_token', () => {
    expect(pb.RefreshTokenResponse.decode(bytes('08 01 1a 01 6e'))).toEqual({ success: true, message: '', new_token: 'n' });
  });

  it('StatusResponse and RunningStatusResponse', () => {
    expect(pb.StatusResponse.decode(bytes('08 01 12 01 79'))).toEqual({ success: true, message: 'y' });
    expect(pb.RunningStatusResponse.decode(bytes('08 01'))).toEqual({ success: true, message: '' });
  });

  it('ExecuteTaskRequest: 2 zip bytes, 3/4 float scores, 5/6 int32 memory', () => {
    const req = pb.ExecuteTaskRequest.decode(bytes('0a 02 74 31 12 03 50 4b 03 1d 00 00 48 42 25 00 00 00 40 28 04 30 01'));
    expect(req.task_id).toBe('t1');
    expect(Buffer.from(req.task_zip).toString('hex')).toBe('504b03');
    expect(req.cpu_usage).toBe(50);
    expect(req.gpu_usage).toBe(2);
    expect(req.memory_gb).toBe(4);
    expect(req.gpu_memory_gb).toBe(1);
  });

  it('StopTaskExecutionRequest: 1 task_id', () => {
    expect(pb.StopTaskExecutionRequest.decode(bytes('0a 02 74 31'))).toEqual({ task_id: 't1' });
  });

  it('upload and usage responses: 1 success, 2 message', () => {
    expect(pb.TaskOutputUploadResponse.decode(bytes('08 01'))).toEqual({ success: true, message: '' });
    expect(pb.TaskResultUploadResponse.decode(bytes('08 01 12 02 6f 6b'))).toEqual({ success: true, message: 'ok' });
    expect(pb.TaskUsageResponse.decode(bytes('12 01 78'))).toEqual({ success: false, message: 'x' });
  });
});

describe('method paths on the wire', () => {
  it.each([
    [pb.UserServiceService.login.path, '/nodepool.UserService/Login'],
    [pb.UserServiceService.getBalance.path, '/nodepool.UserService/GetBalance'],
    [pb.UserServiceService.refreshToken.path, '/nodepool.UserService/RefreshToken'],
    [pb.NodeManagerServiceService.registerWorkerNode.path, '/nodepool.NodeManagerService/RegisterWorkerNode'],
    [pb.NodeManagerServiceService.reportStatus.path, '/nodepool.NodeManagerService/ReportStatus'],
    [pb.WorkerNodeServiceService.executeTask.path, '/nodepool.WorkerNodeService/ExecuteTask'],
    [pb.WorkerNodeServiceService.stopTaskExecution.path, '/nodepool.WorkerNodeService/StopTaskExecution'],
    [pb.WorkerNodeServiceService.taskOutputUpload.path, '/nodepool.WorkerNodeService/TaskOutputUpload'],
    [pb.WorkerNodeServiceService.taskUsage.path, '/nodepool.WorkerNodeService/TaskUsage'],
    [pb.WorkerNodeServiceService.taskResultUpload.path, '/nodepool.WorkerNodeService/TaskResultUpload'],
    [pb.MasterNodeServiceService.uploadTask.path, '/nodepool.MasterNodeService/UploadTask'],
    [pb.MasterNodeServiceService.getAllUserTasks.path, '/nodepool.MasterNodeService/GetAllUserTasks'],
    [pb.MasterNodeServiceService.getTasklog.path, '/nodepool.MasterNodeService/GetTasklog'],
  ])('%s', (actual, expected) => {
    expect(actual).toBe(expected);
  });

  it('TaskInfo keeps the gap at field 3: 4 message, 9 worker_ip', () => {
    const info = pb.TaskInfo.encode({
      task_id: 'a',
      status: 'b',
      message: 'c',
      cpu_usage: 0,
      memory_usage: 0,
      gpu_usage: 0,
      gpu_memory_usage: 0,
      worker_ip: 'd',
    }).finish();
    expect(hex(info)).toBe('0a 01 61 12 01 62 22 01 63 4a 01 64');
  });
});
