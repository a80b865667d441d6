//! Roles of each API route (`http`; the desk's pages have their own, in `desk::pages`).
//! Here, with the roles themselves, so the desk's pages can ask the same question.

use super::Role::{self, *};

/// `GET /api/queues`, `GET /api/surge`.
pub const FLOOR_READ: &[Role] = &[Operator, Supervisor, Officer, Admin];
/// `GET /api/operators`.
pub const OPERATORS: &[Role] = &[Supervisor, Officer, Admin];
/// `POST /api/operators/{ext}/state` (operators: their own extension only).
pub const OPERATOR_STATE: &[Role] = &[Operator, Supervisor, Admin];
/// `GET /api/events`, `GET /api/store`.
pub const ADMIN: &[Role] = &[Admin];
/// `GET /api/calls/{call}/history` (operators: their own calls only).
pub const HISTORY: &[Role] = &[Operator, Supervisor, Officer, Admin];
/// The roles that hear every recording of their tenants (`crate::recordings::access`;
/// operators their own calls' where the tenant allows it).
pub const RECORDINGS: &[Role] = &[Supervisor, Officer, Admin];
/// `POST /api/calls/{call}/monitor`, `POST /api/tenants/{id}/surge`.
pub const SUPERVISE: &[Role] = &[Supervisor, Admin];
/// `GET /api/audit`.
pub const AUDIT: &[Role] = &[Officer, Admin];
/// `GET /api/me`, tokens, the knowledge base, `GET /api/requests` and
/// `GET /api/requests/{id}` (their tenants' requests).
pub const EVERYONE: &[Role] = &[Operator, Supervisor, Editor, Officer, Admin];
