//! The cases, one module per area of the contract.

pub mod context;
pub mod debug;
pub mod lifecycle;
