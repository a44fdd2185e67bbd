//! The cases, one module per area of the contract.

pub mod lifecycle;
