// HTTP client for /api/v1 used by the process designer (web/shared/static/staff.js): the staff token
// in sessionStorage under the designer's own key (a designer and a workbench login in one browser
// stay apart), JSON or BPMN XML bodies, errors as ApiError {status, code, message, fields}.

import { ApiError } from "/shared/static/http.js";
import { staffClient } from "/shared/static/staff.js";

export { ApiError };

export const client = staffClient("govflow.designer.session");
export const { session, onUnauthorized, request, api } = client;
