//! What `pressplay simulate` prints: the scenario file it reads, the summary, and the timeline as
//! text, a Mermaid Gantt chart or an SVG.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Deserialize;

use super::sim::{Merge, Outcome, Scenario, clock};
use super::workflow::parse_duration;

/// A scenario file (`pressplay simulate --scenario FILE`): every field optional.
///
/// ```yaml
/// durations: {author: 45m, lint: 10m, tests: 20m, deploy: 5m, acceptance: 15m}
/// defaultDuration: 30m
/// failureRate: 0.1     # share of agent runs that fail
/// seed: 7
/// mergeAfter: 2h       # a person merges this long after the task starts waiting
/// horizon: 30d
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScenarioFile {
    /// Duration of each stage's agent, by stage.
    #[serde(default)]
    pub durations: BTreeMap<String, String>,
    /// Duration of stages not listed.
    pub default_duration: Option<String>,
    /// Share of agent runs that fail (0 to 1).
    pub failure_rate: Option<f64>,
    /// Seed of the draws.
    pub seed: Option<u64>,
    /// How long after a task starts waiting its pull request is merged.
    pub merge_after: Option<String>,
    /// When the clock stops.
    pub horizon: Option<String>,
}

/// A duration (`45m`, `2h`, `1h30m`, `3d`, `90` seconds) that is not zero, or why not.
pub fn duration(field: &str, text: &str) -> Result<u64, String> {
    let valid = !text.is_empty() && text.chars().all(|c| c.is_ascii_digit() || "smhd".contains(c));
    let seconds = parse_duration(text);
    if !valid || seconds == 0 {
        return Err(format!("{field}: {text:?} is not a duration; write it like 45m, 2h or 1d"));
    }
    Ok(seconds)
}

impl ScenarioFile {
    /// The scenario it describes.
    pub fn scenario(&self) -> Result<Scenario, String> {
        let mut scenario = Scenario::default();
        for (stage, text) in &self.durations {
            scenario.durations.insert(stage.clone(), duration(&format!("durations.{stage}"), text)?);
        }
        if let Some(text) = &self.default_duration {
            scenario.default_duration = duration("defaultDuration", text)?;
        }
        if let Some(rate) = self.failure_rate {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("failureRate: {rate} is not between 0 and 1"));
            }
            scenario.failure_rate = rate;
        }
        if let Some(seed) = self.seed {
            scenario.seed = seed;
        }
        if let Some(text) = &self.merge_after {
            scenario.merge = Merge::AfterWait(duration("mergeAfter", text)?);
        }
        if let Some(text) = &self.horizon {
            scenario.horizon = duration("horizon", text)?;
        }
        Ok(scenario)
    }
}

/// The summary: makespan, agent-hours, peaks, sizes, and what did not finish.
pub fn summary(outcome: &Outcome) -> String {
    let mut out = String::new();
    let tasks: BTreeSet<u64> = outcome.agents.iter().map(|a| a.task).filter(|t| *t > 0).collect();
    let merged: Vec<u64> = tasks.iter().copied().filter(|t| outcome.merged_at(*t).is_some()).collect();
    let makespan = merged.iter().filter_map(|t| outcome.merged_at(*t)).max().unwrap_or(0);
    let _ = writeln!(out, "tasks merged:        {} of {} started", merged.len(), tasks.len());
    let _ = writeln!(out, "makespan:            {} (to the last merge)", clock(makespan));
    let _ = writeln!(out, "agent-hours:         {:.1}", outcome.agent_hours());
    let _ = writeln!(out, "peak agents at once: {}", outcome.peak_agents);
    let _ = writeln!(out, "peak pods at once:   {}", outcome.peak_pods);
    let _ = writeln!(
        out,
        "largest object:      {:.1} KiB ({})",
        outcome.largest_object.0 as f64 / 1024.0,
        outcome.largest_object.1
    );
    let _ = writeln!(
        out,
        "largest run status:  {:.1} KiB ({})",
        outcome.largest_status.0 as f64 / 1024.0,
        outcome.largest_status.1
    );
    let nodes = outcome.workflows.iter().map(|w| w.nodes).max().unwrap_or(0);
    let _ = writeln!(out, "most nodes in a run: {nodes}");
    // (A CronWorkflow's run caught by the end of the clock is not news.)
    for workflow in outcome.workflows.iter().filter(|w| w.phase != "Succeeded" && !(w.phase == "Running" && w.cron)) {
        let message = if workflow.message.is_empty() { String::new() } else { format!(": {}", workflow.message) };
        let _ = writeln!(out, "workflow {} {}{message}", workflow.name, workflow.phase);
    }
    for condition in outcome.workflows.iter().flat_map(|w| &w.conditions) {
        let _ = writeln!(out, "condition: {condition}");
    }
    for (workflow, node, template, message) in &outcome.stuck {
        let _ = writeln!(
            out,
            "still waiting: {workflow} {node} ({template}){}",
            if message.is_empty() { String::new() } else { format!(": {message}") }
        );
    }
    for note in &outcome.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

/// The timeline as an SVG Gantt chart: one row per task, one bar per agent run, the merge wait
/// hatched.
pub fn svg(outcome: &Outcome) -> String {
    let tasks: Vec<u64> = outcome.agents.iter().map(|a| a.task).collect::<BTreeSet<_>>().into_iter().collect();
    let end = outcome.end.max(1) as f64;
    let (left, width, row) = (80.0, 900.0, 22.0);
    let height = row * tasks.len() as f64 + 40.0;
    let x = |t: u64| left + t as f64 / end * width;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\n",
        left + width + 20.0
    );
    let color = |stage: &str| match stage {
        "author" => "#4e79a7",
        "lint" => "#f28e2b",
        "tests" => "#59a14f",
        "deploy" => "#b07aa1",
        "acceptance" => "#edc948",
        "merge" => "#76b7b2",
        _ => "#9c755f",
    };
    for (i, task) in tasks.iter().enumerate() {
        let y = 20.0 + row * i as f64;
        let _ = writeln!(out, "  <text x=\"4\" y=\"{}\">task {task}</text>", y + 14.0);
        if let Some(wait) = outcome.waits.get(task) {
            let until = outcome.merged_at(*task).unwrap_or(outcome.end);
            let _ = writeln!(
                out,
                "  <rect x=\"{:.1}\" y=\"{y}\" width=\"{:.1}\" height=\"{}\" fill=\"#dddddd\"><title>merge wait {}–{}</title></rect>",
                x(*wait),
                (x(until) - x(*wait)).max(1.0),
                row - 4.0,
                clock(*wait),
                clock(until)
            );
        }
        for agent in outcome.agents_of(*task) {
            let stop = agent.end.unwrap_or(outcome.end);
            let stroke = if agent.phase == "Failed" { " stroke=\"#e15759\" stroke-width=\"2\"" } else { "" };
            let _ = writeln!(
                out,
                "  <rect x=\"{:.1}\" y=\"{y}\" width=\"{:.1}\" height=\"{}\" fill=\"{}\"{stroke}><title>{} {}–{} {}</title></rect>",
                x(agent.start),
                (x(stop) - x(agent.start)).max(1.0),
                row - 4.0,
                color(&agent.stage),
                agent.stage,
                clock(agent.start),
                clock(stop),
                agent.phase
            );
        }
    }
    let _ = writeln!(out, "  <text x=\"{left}\" y=\"{}\">0</text>", height - 6.0);
    let _ = writeln!(
        out,
        "  <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
        left + width,
        height - 6.0,
        clock(outcome.end)
    );
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scenario_file_sets_what_it_names() {
        let file: ScenarioFile =
            serde_saphyr::from_str("durations: {author: 45m}\nfailureRate: 0.25\nmergeAfter: 2h\n").unwrap();
        let scenario = file.scenario().unwrap();
        assert_eq!(scenario.durations["author"], 2700);
        assert!((scenario.failure_rate - 0.25).abs() < 1e-9);
        assert_eq!(scenario.merge, Merge::AfterWait(7200));
        let bad: ScenarioFile = serde_saphyr::from_str("durations: {author: soon}\n").unwrap();
        assert!(bad.scenario().unwrap_err().contains("durations.author"));
        assert!(serde_saphyr::from_str::<ScenarioFile>("durationz: {}\n").is_err());
    }
}
