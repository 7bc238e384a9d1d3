import { Controller, UseFilters } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import type { Metadata } from '@grpc/grpc-js';
import type {
  GetBalanceResponse,
  LoginRequest,
  LoginResponse,
  RefreshTokenRequest,
  RefreshTokenResponse,
  TransferRequest,
  TransferResponse,
} from '@hivemind/shared/proto/generated/nodepool';
import { TokenAuthority } from '../auth';
import { PoolState } from '../pool-state';
import { GrpcErrorsFilter } from './grpc-errors.filter';

/** UserService: log in, refresh a token, balances and transfers. */
@Controller()
@UseFilters(GrpcErrorsFilter)
export class UsersController {
  constructor(
    private readonly state: PoolState,
    private readonly tokens: TokenAuthority,
  ) {}

  @GrpcMethod('UserService', 'Login')
  login(req: LoginRequest): LoginResponse {
    const u = this.state.checkPassword(req.username, req.password);
    return u ? { success: true, message: 'login successful', token: this.tokens.issue(u) } : { success: false, message: 'invalid username or password', token: '' };
  }

  @GrpcMethod('UserService', 'RefreshToken')
  refreshToken(req: RefreshTokenRequest): RefreshTokenResponse {
    const claims = this.tokens.verify(req.old_token);
    const u = claims ? this.state.users.get(claims.username) : undefined;
    return u ? { success: true, message: 'token refreshed', new_token: this.tokens.issue(u) } : { success: false, message: 'token invalid or expired', new_token: '' };
  }

  @GrpcMethod('UserService', 'Transfer')
  transfer(req: TransferRequest, md: Metadata): TransferResponse {
    const user = this.tokens.require(md);
    const from = this.state.users.get(user.username);
    const to = this.state.users.get(req.receiver_username);
    if (!from || !to) return { success: false, message: `unknown user ${req.receiver_username}` };
    if (!(req.amount > 0) || from.balance < req.amount) return { success: false, message: 'invalid amount or insufficient balance' };
    from.balance -= req.amount;
    to.balance += req.amount;
    return { success: true, message: `transferred ${req.amount} CPT to ${to.username}` };
  }

  @GrpcMethod('UserService', 'GetBalance')
  getBalance(_req: unknown, md: Metadata): GetBalanceResponse {
    const u = this.state.users.get(this.tokens.require(md).username);
    return u ? { success: true, message: '', balance: u.balance } : { success: false, message: 'unknown user', balance: 0 };
  }
}
