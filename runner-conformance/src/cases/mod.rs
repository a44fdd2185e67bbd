//! The cases, one module per area of the contract.

pub mod close;
pub mod lifecycle;
pub mod tasks;
