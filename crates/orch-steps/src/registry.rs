//! The one place where step types are registered.

use crate::step::StepType;
use crate::steps;

/// Every step type, in the order the docs list them.
pub static REGISTRY: &[StepType] = &[
    steps::load::TYPE,
    steps::join::TYPE,
    steps::aggregate::TYPE,
    steps::derive::TYPE,
    steps::filter::TYPE,
    steps::select::TYPE,
    steps::sort::TYPE,
    steps::union::TYPE,
    steps::distinct::TYPE,
    steps::sql::TYPE,
    steps::check::TYPE,
    steps::write::TYPE,
];

pub fn lookup(name: &str) -> Option<&'static StepType> {
    REGISTRY.iter().find(|t| t.name == name)
}

pub fn names() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().map(|t| t.name)
}
