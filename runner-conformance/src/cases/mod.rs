//! The cases, one module per area of the contract.

pub mod close;
pub mod context;
pub mod debug;
pub mod engine;
pub mod idle;
pub mod lifecycle;
pub mod nested;
pub mod tasks;
