//! Who may hear a recording: a pure decision from the principal's role, whether they work
//! for the call's tenant, whether the call was theirs and the tenant's rule for operators.
//! And who may join a live call from a softphone by feature code ([`decide_live`]), under
//! the same rule.

use crate::accounts::Role;
use crate::config::recordings::TenantRecordings;
use crate::events::MonitorMode;

/// The answer to one request for a recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Serve it (and audit it).
    Allowed,
    /// The role may not hear recordings here: 403.
    WrongRole,
    /// Not a call this principal may know of: 404, as for a call that does not exist.
    NotFound,
}

/// The roles that may ask for a recording at all; operators only under
/// [`TenantRecordings::operators_hear_own`].
pub const ROLES: &[Role] = &[Role::Operator, Role::Supervisor, Role::Officer, Role::Admin];

/// Decides whether `role` may hear a recording of a call of a tenant it does (`sees_tenant`)
/// or does not work for, the call having been its own (`own_call`, operators) or not, under
/// the tenant's `rules`. Officers and supervisors hear every call of their tenants; an
/// operator only their own calls, and only where the tenant allows it; editors never.
pub fn decide(role: Role, sees_tenant: bool, own_call: bool, rules: TenantRecordings) -> Access {
    if !ROLES.contains(&role) {
        return Access::WrongRole;
    }
    if !sees_tenant {
        return Access::NotFound;
    }
    match role {
        Role::Operator if !rules.operators_hear_own => Access::WrongRole,
        Role::Operator if !own_call => Access::NotFound,
        _ => Access::Allowed,
    }
}

/// The roles of accounts that may join a live call by feature code (`navbat user sip`):
/// officers listen (D19), supervisor accounts listen, whisper and barge (D17); both only on
/// calls of their tenants. Configured supervisors (`[[operator]] supervisor = true`) are not
/// accounts and keep their own rule: every call.
pub const LIVE_ROLES: &[Role] = &[Role::Officer, Role::Supervisor];

/// Decides whether an account of `role` may join a live call in `mode`, the call being of a
/// tenant it works for (`sees_tenant`) or not. [`Access::WrongRole`] (403) comes first, so a
/// refusal by role says nothing about the call; [`Access::NotFound`] must be answered as a
/// call that is not there (480 "not on a call", 404 "no such extension"), so another
/// tenant's calls and operators are not revealed.
pub fn decide_live(role: Role, mode: MonitorMode, sees_tenant: bool) -> Access {
    let mode_allowed = match role {
        Role::Officer => mode == MonitorMode::Listen,
        Role::Supervisor => true,
        _ => false,
    };
    if !LIVE_ROLES.contains(&role) || !mode_allowed {
        return Access::WrongRole;
    }
    if !sees_tenant {
        return Access::NotFound;
    }
    Access::Allowed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_joins_by_role_mode_and_tenant() {
        use Access::*;
        use MonitorMode::*;
        use Role::*;
        let cases = [
            (Officer, Listen, true, Allowed),
            (Officer, Listen, false, NotFound),
            (Officer, Whisper, true, WrongRole),
            (Officer, Whisper, false, WrongRole),
            (Officer, Barge, true, WrongRole),
            (Officer, Barge, false, WrongRole),
            (Supervisor, Listen, true, Allowed),
            (Supervisor, Whisper, true, Allowed),
            (Supervisor, Barge, true, Allowed),
            (Supervisor, Listen, false, NotFound),
            (Supervisor, Whisper, false, NotFound),
            (Supervisor, Barge, false, NotFound),
        ];
        for (role, mode, sees, expected) in cases {
            assert_eq!(
                decide_live(role, mode, sees),
                expected,
                "{role} {mode:?} sees={sees}"
            );
        }
        for role in [Operator, Editor, Admin] {
            for mode in [Listen, Whisper, Barge] {
                for sees in [true, false] {
                    assert_eq!(decide_live(role, mode, sees), WrongRole, "{role} {mode:?}");
                }
            }
        }
    }

    #[test]
    fn each_role_against_tenant_and_ownership() {
        let closed = TenantRecordings {
            retention_months: 12,
            operators_hear_own: false,
        };
        let open = TenantRecordings {
            operators_hear_own: true,
            ..closed
        };
        use Access::*;
        use Role::*;
        let cases = [
            (Officer, true, false, closed, Allowed),
            (Officer, false, false, closed, NotFound),
            (Supervisor, true, false, closed, Allowed),
            (Supervisor, false, true, open, NotFound),
            (Admin, true, false, closed, Allowed),
            (Editor, true, true, open, WrongRole),
            (Editor, false, false, open, WrongRole),
            (Operator, true, true, closed, WrongRole),
            (Operator, true, true, open, Allowed),
            (Operator, true, false, open, NotFound),
            (Operator, false, true, open, NotFound),
        ];
        for (role, sees, own, rules, expected) in cases {
            assert_eq!(
                decide(role, sees, own, rules),
                expected,
                "{role} sees={sees} own={own} {rules:?}"
            );
        }
    }
}
