//! One file per step type. To add a step type: write `steps/<name>.rs` with a `TYPE`
//! constant and add one line to [`crate::registry::REGISTRY`].

pub mod aggregate;
pub mod check;
pub mod derive;
pub mod distinct;
pub mod filter;
pub mod join;
pub mod load;
pub mod select;
pub mod sort;
pub mod sql;
pub mod union;
pub mod write;
