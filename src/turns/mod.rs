//! The turn path, the same under every API: where a request's turn runs in its conversation
//! (placement), whether it may run now (admission: running turns, budget held), its start on a
//! worker, its answer through the output limit, its spend, and function calling's parked turns
//! and their continuation. It takes a neutral [`TurnRequest`] and hands back a [`Started`] turn
//! whose events each API surface renders in its own wire format; it knows no wire format.

mod admission;
pub(crate) mod answer;
mod claim;
mod ledger;
pub(crate) mod output_limit;
pub(crate) mod placement;
mod start;
pub(crate) mod tool_continue;
pub(crate) mod tool_parking;

pub(crate) use claim::{Claim, finished};
pub(crate) use start::{Started, ToolTurn, TurnRequest, note_failure, or_ended, start};
