//! A model of the Argo controllers that runs what `output/` wrote.
//!
//! [`subst`] is how Argo Workflows substitutes `{{...}}` in a template's text, pass by pass, and how
//! Argo Events writes trigger parameters; the run-time model of the controllers builds on it.

#![allow(clippy::missing_errors_doc, clippy::missing_panics_doc)]

pub mod expr;
pub mod sim;
pub mod store;
pub mod subst;
pub mod workflow;
