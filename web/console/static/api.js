// HTTP client for /api/v1 used by the staff workbench (web/shared/static/staff.js): the staff token
// in sessionStorage under the workbench's own key, errors as ApiError {status, code, message, fields}.

import { ApiError } from "/shared/static/http.js";
import { staffClient } from "/shared/static/staff.js";

export { ApiError };

export const client = staffClient("govflow.console.session");
export const { session, onUnauthorized, request, api } = client;
