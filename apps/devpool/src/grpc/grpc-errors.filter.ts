import { ArgumentsHost, Catch, Inject, RpcExceptionFilter } from '@nestjs/common';
import { RpcException } from '@nestjs/microservices';
import { status } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { Observable, throwError } from 'rxjs';
import { LOGGER } from '@hivemind/shared/logging/logger';
import { errorMessage } from '@hivemind/shared/util/errors';

/**
 * Maps what a devpool handler throws to a gRPC status: an RpcException carries its own
 * (`{ code, details }`), anything else is a failed handler: INTERNAL with its message.
 */
@Catch()
export class GrpcErrorsFilter implements RpcExceptionFilter {
  constructor(@Inject(LOGGER) private readonly logger: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): Observable<never> {
    if (exception instanceof RpcException) return throwError(() => exception.getError());
    const call = host.getArgByIndex<{ getPath?: () => string } | undefined>(2);
    const method = call?.getPath?.();
    this.logger.error({ method, err: exception }, 'handler failed');
    return throwError(() => ({ code: status.INTERNAL, details: errorMessage(exception) }));
  }
}
