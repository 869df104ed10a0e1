/**
 * The one door to the jupyter-mlp server routes (`<base_url>/mlp/api`, see
 * jupyter_mlp/server/openapi.yaml): `requestAPI` over `ServerConnection.makeRequest`, the error
 * type, and the small helpers every route module of this folder shares.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/**
 * An error status from a route, with the server's `message`, the request `field` it names
 * (`name`, `params.lr`, `objective`, ...) when it names one, and for filters `position`.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly position: number | null = null,
    readonly field: string | null = null
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/**
 * Call a route under `<base_url>/mlp/api/` and return its decoded JSON body.
 *
 * Throws `ServerConnection.NetworkError` when the server cannot be reached and `ApiError` (with
 * the server's message, and the position of a filter error) on an error status.
 */
export async function requestAPI<T>(
  path: string,
  init: RequestInit = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'mlp/api', path);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    if (error instanceof ServerConnection.NetworkError) {
      throw error;
    }
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  if (!response.ok) {
    const body = errorBody(text);
    throw new ApiError(
      response.status,
      body.message ?? (response.statusText || `HTTP ${response.status}`),
      body.position,
      body.field
    );
  }
  return (text ? JSON.parse(text) : undefined) as T;
}

export function query(params: object): string {
  const out: Record<string, string | number> = {};
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') {
      out[key] = value as string | number;
    }
  }
  return URLExt.objectToQueryString(out);
}

export function runPath(id: string, ...parts: string[]): string {
  return ['runs', encodeURIComponent(id), ...parts].join('/');
}

export const JSON_HEADERS = { 'Content-Type': 'application/json' };

/** The text of an error for a message line (a server message, a network failure). */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The `message`, `position` and `field` of a server error body, where it is JSON and has them. */
function errorBody(text: string): {
  message?: string;
  position: number | null;
  field: string | null;
} {
  try {
    const { message, position, field } = JSON.parse(text) as {
      message?: unknown;
      position?: unknown;
      field?: unknown;
    };
    return {
      message: typeof message === 'string' && message ? message : undefined,
      position: typeof position === 'number' ? position : null,
      field: typeof field === 'string' && field ? field : null
    };
  } catch {
    return { position: null, field: null };
  }
}
