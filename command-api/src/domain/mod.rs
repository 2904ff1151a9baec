//! The pure write model of a ticket: commands, state, decisions.
//!
//! `decide(state, command, context)` says which events a command produces
//! (or why it is refused); `evolve(state, event)` folds an event into the
//! state. Both are pure: time, the acting principal and new ids arrive with
//! the command, what the service knows with the context, so the same log
//! and the same commands always give the same result.

pub mod command;
pub mod decide;
pub mod error;
pub mod limits;
pub mod proximity;
pub mod staffing;
pub mod state;
pub mod validate;
pub mod workflow;

#[cfg(test)]
mod tests;

pub use command::{
    Action, AssignDispatch, AssignTicket, ChangeStatus, Command, Context, CreateTicket,
    DispatchResponse, EditTicket, ExpireDispatch, PostComment, ProgressDispatch, RecordRead,
    ReportLocation, RespondDispatch, Target,
};
pub use decide::{check_create, decide};
pub use error::DomainError;
/// The dispatch lifecycle, defined once beside the events that store it.
pub use event_store::DispatchPhase;
pub use proximity::{
    choose_technician, choose_technician_excluding, haversine_km, TechnicianChoice, TechnicianInfo,
};
pub use state::{evolve, AppliedCommand, Dispatch, Ticket, TicketState, RECENT_COMMANDS_MAX};
