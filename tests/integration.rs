//! The one integration test binary (one link step): fixtures, CLI runs, properties, limits,
//! the committed examples, and the checks that need `../shared/` (skipped when it is absent).

mod acceptance;
mod argo_model;
mod cli;
mod common;
mod crd;
mod dispatch;
mod events;
mod examples;
mod fixtures;
mod injection;
mod lifecycle;
mod limits;
mod payloads;
mod profiles;
mod props;
mod runtime;
mod scale;
mod shared;
mod taskmaster;
mod write;
