//! Generators for hyperloglog commands (filled in by that family's work).

use crate::harness::Generator;

pub const GENERATORS: &[Generator] = &[];
