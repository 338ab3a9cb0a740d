//! A model of the Argo controllers that runs what `output/` wrote.
//!
//! [`subst`] is how Argo Workflows substitutes `{{...}}` in a template's text, pass by pass, and how
//! Argo Events writes trigger parameters; the run-time model of the controllers builds on it.

#![allow(clippy::missing_errors_doc, clippy::missing_panics_doc)]

pub mod events;
pub mod expr;
pub mod gjson;
pub mod report;
pub mod sim;
pub mod store;
pub mod subst;
pub mod workflow;

use serde_json::Value;

/// Delivers a GitHub webhook to the Sensors through the Argo Events model and returns what their
/// triggers do: the dispatch `pressplay simulate` runs with.
pub fn dispatch(sensors: &[Value], event: &str, delivery: &str, body: &Value) -> Vec<sim::Trigger> {
    events::dispatch(sensors, event, delivery, body)
}
