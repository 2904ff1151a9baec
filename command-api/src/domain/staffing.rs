//! Who can take which work: the roles a command may name as a ticket's
//! assignee or as a dispatch's technician. Both rules follow from what the
//! named user must be able to do next, so they are stated as permissions.

use event_store::{Permission, Role};

/// Why an assignee is refused: one answer whether the user is unknown,
/// another tenant's or of a role that cannot own tickets, so the answer
/// tells nobody which users exist in other tenants.
pub const NOT_AN_ASSIGNEE: &str = "must be a user of this tenant who works tickets";

/// Why a technician is refused (one answer, as [`NOT_AN_ASSIGNEE`]).
pub const NOT_A_TECHNICIAN: &str = "must be a technician of this tenant";

/// Whether a user of `role` can own a ticket. The owner moves the ticket
/// along the workflow, which takes `tickets.manage`: agents and admins.
/// Technicians get their work as dispatches (they could not move a ticket
/// they owned); customers, auditors and analysts do not work tickets.
pub fn can_be_assignee(role: Role) -> bool {
    role.permissions().contains(&Permission::TicketsManage)
}

/// Whether a user of `role` can be sent on a dispatch: only a technician
/// can answer one (`dispatch.respond`); a request to anyone else would wait
/// for its timeout with nobody able to accept it.
pub fn can_be_dispatched(role: Role) -> bool {
    role.permissions().contains(&Permission::DispatchRespond)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_and_admins_own_tickets_and_technicians_take_dispatches() {
        let assignees: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| can_be_assignee(*r))
            .collect();
        assert_eq!(assignees, [Role::Agent, Role::Admin]);
        let dispatched: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| can_be_dispatched(*r))
            .collect();
        assert_eq!(dispatched, [Role::Technician]);
    }
}
