import * as jwt from 'jsonwebtoken';
import { TokenAuthority } from './auth';

describe('TokenAuthority', () => {
  const auth = new TokenAuthority('devpool-secret', 3600);
  const alice = { userId: 7, username: 'alice', password: 'x', balance: 0 };

  it('verifies the tokens it issues, and HS256 tokens made with the same secret as a string (as the deployed pool makes them)', () => {
    expect(auth.verify(auth.issue(alice))).toMatchObject({ user_id: 7, username: 'alice' });
    const foreign = jwt.sign({ user_id: 8, username: 'bob' }, 'devpool-secret', { algorithm: 'HS256', expiresIn: 60 });
    expect(auth.verify(foreign)).toMatchObject({ user_id: 8, username: 'bob' });
  });

  it('refuses a token signed with another secret, an expired one, an unsigned one and one without a username', () => {
    expect(auth.verify(jwt.sign({ user_id: 8, username: 'bob' }, 'another-secret', { algorithm: 'HS256' }))).toBeNull();
    expect(auth.verify(jwt.sign({ user_id: 8, username: 'bob', exp: Math.floor(Date.now() / 1000) - 10 }, 'devpool-secret', { algorithm: 'HS256' }))).toBeNull();
    expect(auth.verify(jwt.sign({ user_id: 8, username: 'bob' }, '', { algorithm: 'none' }))).toBeNull();
    expect(auth.verify(jwt.sign({ user_id: 8 }, 'devpool-secret', { algorithm: 'HS256' }))).toBeNull();
    expect(auth.verify('not a token')).toBeNull();
  });
});
