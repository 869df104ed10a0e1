/** `GET /me`: who the server takes this user for, and whether the store is a team's. */
import { ApiError, requestAPI } from './client';
import { IMe } from './types';

/**
 * What a server without the route (404: before team mode) amounts to: one user who may change
 * everything, no team.
 */
export const SINGLE_SEAT: IMe = { name: null, admin: true, team: false };

/** `GET /me`; a server that has no such route answers as a single seat does. */
export async function me(signal?: AbortSignal): Promise<IMe> {
  let found: Partial<IMe>;
  try {
    found = await requestAPI<Partial<IMe>>('me', { signal });
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      return SINGLE_SEAT;
    }
    throw error;
  }
  if (typeof found?.admin !== 'boolean' || typeof found.team !== 'boolean') {
    // Not this route's answer (a proxy's, or a test harness's mock of JupyterLab's /api/me).
    return SINGLE_SEAT;
  }
  return {
    name: typeof found.name === 'string' && found.name ? found.name : null,
    admin: found.admin,
    team: found.team,
    ...(typeof found.store === 'string' ? { store: found.store } : {})
  };
}
