//! Who may hear a recording: a pure decision from the principal's role, whether they work
//! for the call's tenant, whether the call was theirs and the tenant's rule for operators.

use crate::accounts::Role;
use crate::config::recordings::TenantRecordings;

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

#[cfg(test)]
mod tests {
    use super::*;

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
