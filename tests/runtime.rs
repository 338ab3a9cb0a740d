//! Scenarios run through the run-time model (`pressplay::model`): the rendered tree, not the
//! plan, executed under the controllers' rules.

use std::collections::BTreeMap;

use pressplay::model::sim::{self, Outcome, Scenario, Trigger};
use serde_json::Value;

use crate::common::{render_file, root};

fn no_events(_: &[Value], _: &str, _: &str, _: &Value) -> Vec<Trigger> {
    Vec::new()
}

fn tree(example: &str) -> BTreeMap<String, String> {
    let path = root().join("examples").join(example);
    let input =
        if path.join("requirements.yaml").exists() { path.join("requirements.yaml") } else { path.join("tasks.json") };
    render_file(&input, "x").expect("the example renders").files
}

fn run(example: &str, scenario: &Scenario) -> Outcome {
    sim::run(&tree(example), scenario, &no_events).expect("the model runs")
}

#[test]
fn scratch_basic() {
    let outcome = run("basic", &Scenario::default());
    println!("{}", sim::timeline(&outcome));
    for w in &outcome.workflows {
        println!("{w:?}");
    }
    for s in &outcome.stuck {
        println!("stuck {s:?}");
    }
    for n in &outcome.notes {
        println!("note {n}");
    }
    println!("{:?}", outcome.left);
}
