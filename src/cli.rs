//! Command-line definitions and dispatch. No domain logic: each command calls the library and
//! decides what goes to stdout, what to stderr, and the exit code (0 ok, 1 `--check` found
//! drift, 2 bad input or I/O error).

use std::io::Write as _;

/// `eprintln!` that ignores a closed stderr (`pressplay validate x 2>&1 | head -1`).
macro_rules! note {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `eprint!` that ignores a closed stderr.
macro_rules! note_raw {
    ($($arg:tt)*) => {{
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}
use std::path::{Path, PathBuf};

use clap::{CommandFactory as _, Parser, Subcommand, ValueEnum};

use crate::plan::Plan;
use crate::spec::{Format, LoadOptions};
use crate::{Error, Options, Planned, generate, load_and_plan, output};

/// Turn a task backlog into Argo Workflows manifests that carry every task through a chain of
/// AI agents until it is merged.
#[derive(Debug, Parser)]
#[command(name = "pressplay", version, about, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How to read the backlog; shared by every command that reads one.
#[derive(Debug, Clone, clap::Args)]
pub struct Input {
    /// The backlog: requirements.yaml, or a Task Master tasks.json.
    pub file: PathBuf,
    /// Task Master tag to read.
    #[arg(long, default_value = "master")]
    pub tag: String,
    /// Drop dependencies on tasks that do not exist, with a warning, instead of failing.
    #[arg(long)]
    pub lenient: bool,
    /// Make every subtask a task of its own (a DAG node) instead of input for its task's author.
    #[arg(long)]
    pub subtasks_as_tasks: bool,
    /// Project-level requirements (secrets and environment) for every task's agents.
    #[arg(long, value_name = "FILE")]
    pub requirements: Option<PathBuf>,
    /// Allow `events.webhookSecret: none` (unsigned webhooks; for test clusters only).
    #[arg(long)]
    pub insecure_webhook: bool,
    /// Project name, replacing `project.name` (Task Master files have none).
    #[arg(long, value_name = "NAME")]
    pub project: Option<String>,
    /// Repository (`owner/name` or URL), replacing `project.repository`.
    #[arg(long, value_name = "REPO")]
    pub repository: Option<String>,
    /// A directory of agent profiles (`<role>.yaml`) that override the built-in ones and the
    /// backlog's `profiles:`, field by field.
    #[arg(long, value_name = "DIR")]
    pub profiles: Option<PathBuf>,
}

impl Input {
    fn options(&self, format: Format) -> LoadOptions {
        LoadOptions {
            format,
            tag: Some(self.tag.clone()),
            lenient: self.lenient,
            subtasks_as_tasks: self.subtasks_as_tasks,
            requirements: self.requirements.clone(),
            insecure_webhook: self.insecure_webhook,
            project_name: self.project.clone(),
            repository: self.repository.clone(),
            profiles: self.profiles.clone(),
        }
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render a backlog into a GitOps tree (or check one, or print it).
    Render {
        #[command(flatten)]
        input: Input,
        /// The backlog's format; `auto` reads JSON as Task Master and anything else as native.
        #[arg(long, value_enum, default_value_t = Format::Auto)]
        format: Format,
        /// Directory to write the tree into.
        #[arg(short, long, value_name = "DIR", required_unless_present = "stdout")]
        output: Option<PathBuf>,
        /// Write nothing; exit 1 with a unified diff when DIR is not up to date.
        #[arg(long, requires = "output")]
        check: bool,
        /// Print every installable document as one stream, for `kubectl apply -f -`.
        #[arg(long, conflicts_with_all = ["output", "check"])]
        stdout: bool,
        /// Directory of templates that replace the built-in ones (same relative paths).
        #[arg(long, value_name = "DIR")]
        templates: Option<PathBuf>,
    },
    /// Check a backlog and report every problem at once.
    Validate {
        #[command(flatten)]
        input: Input,
        /// The backlog's format; `auto` reads JSON as Task Master and anything else as native.
        #[arg(long, value_enum, default_value_t = Format::Auto)]
        format: Format,
    },
    /// Print the JSON Schema of the backlog format.
    Schema,
    /// Print the task graph.
    Graph {
        #[command(flatten)]
        input: Input,
        /// The backlog's format; `auto` reads JSON as Task Master and anything else as native.
        #[arg(long, value_enum, default_value_t = Format::Auto)]
        input_format: Format,
        /// Output format.
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
    },
    /// Print levels, critical path, chunking and parallelism.
    Plan {
        #[command(flatten)]
        input: Input,
        /// The backlog's format; `auto` reads JSON as Task Master and anything else as native.
        #[arg(long, value_enum, default_value_t = Format::Auto)]
        format: Format,
    },
    /// Run the rendered tree through the model of Argo's controllers: a timeline per task, the
    /// makespan, agent-hours, peak agents and pods, and the largest objects (docs/simulate.md).
    Simulate {
        #[command(flatten)]
        input: Input,
        /// The backlog's format; `auto` reads JSON as Task Master and anything else as native.
        #[arg(long, value_enum, default_value_t = Format::Auto)]
        input_format: Format,
        /// A scenario file: stage durations, failure rate, seed, merge delay, horizon.
        #[arg(long, value_name = "FILE")]
        scenario: Option<PathBuf>,
        /// How long one stage's agent works, as `STAGE=DURATION` (`author=45m`); repeatable.
        #[arg(long = "duration", value_name = "STAGE=DURATION")]
        durations: Vec<String>,
        /// Share of agent runs that fail, 0 to 1.
        #[arg(long, value_name = "RATE")]
        failure_rate: Option<f64>,
        /// Seed of the failure draws.
        #[arg(long)]
        seed: Option<u64>,
        /// How long after a task starts waiting a person merges its pull request.
        #[arg(long, value_name = "DURATION")]
        merge_after: Option<String>,
        /// What to print after the summary.
        #[arg(long, value_enum, default_value_t = TimelineFormat::Text)]
        format: TimelineFormat,
    },
    /// List the agent profiles, or show one resolved (built-in < backlog < --profiles DIR).
    Profiles {
        /// The role to show (`author`, `lint`, ...); all roles when absent.
        name: Option<String>,
        /// Resolve against this backlog's `profiles:` and defaults.
        #[arg(long, value_name = "FILE")]
        backlog: Option<PathBuf>,
        /// A directory of profile overrides (`<role>.yaml`).
        #[arg(long, value_name = "DIR")]
        profiles: Option<PathBuf>,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Formats of `pressplay simulate`'s timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TimelineFormat {
    /// One line per task.
    Text,
    /// A Mermaid Gantt chart.
    Mermaid,
    /// An SVG Gantt chart (the summary goes to stderr).
    Svg,
}

/// Formats of `pressplay graph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Graphviz.
    Dot,
    /// Mermaid (renders on GitHub).
    Mermaid,
}

/// Runs the command line of this process and returns the exit code.
pub fn main() -> u8 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() { 2 } else { 0 };
        }
    };
    run(cli)
}

/// Runs a parsed command line and returns the exit code.
pub fn run(cli: Cli) -> u8 {
    match cli.command {
        Command::Render { input, format, output, check, stdout, templates } => {
            render(&input.file, output.as_deref(), check, stdout, Options { load: input.options(format), templates })
        }
        Command::Validate { input, format } => {
            match load_and_plan(&input.file, &display(&input.file), &input.options(format)) {
                Ok(planned) => {
                    report_warnings(&planned);
                    let n = planned.plan.tasks.len();
                    note!("{}: {n} task{} to run, ok", display(&input.file), if n == 1 { "" } else { "s" });
                    0
                }
                Err(err) => report(&err),
            }
        }
        Command::Schema => {
            let schema = schemars::schema_for!(crate::spec::raw::RawBacklog);
            emit(&format!("{}\n", serde_json::to_string_pretty(&schema).expect("schemas serialise")))
        }
        Command::Graph { input, input_format, format } => with_plan(&input, input_format, |plan| match format {
            GraphFormat::Dot => dot(plan),
            GraphFormat::Mermaid => mermaid(plan),
        }),
        Command::Plan { input, format } => with_plan(&input, format, summary),
        Command::Simulate { input, input_format, scenario, durations, failure_rate, seed, merge_after, format } => {
            let flags = SimulateFlags { scenario, durations, failure_rate, seed, merge_after };
            simulate(&input, input_format, &flags, format)
        }
        Command::Profiles { name, backlog, profiles } => show_profiles(name.as_deref(), backlog, profiles),
        Command::Completions { shell } => {
            let mut buffer = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "pressplay", &mut buffer);
            emit(&String::from_utf8_lossy(&buffer))
        }
    }
}

fn render(file: &Path, out: Option<&Path>, check: bool, stdout: bool, options: Options) -> u8 {
    let name = display(file);
    let generated = match generate(file, &name, &options) {
        Ok(generated) => generated,
        Err(err) => return report(&err),
    };
    report_warnings(&generated.planned);
    if stdout {
        return emit(&output::stream(&generated.documents));
    }
    let dir = out.expect("clap requires --output unless --stdout");
    if check {
        let existing = match output::scan(dir) {
            Ok(existing) => existing,
            Err(err) => return fail(&err.to_string()),
        };
        if let Some(clash) = existing.foreign.iter().find(|f| generated.files.contains_key(*f)) {
            return fail(&output::WriteError::Foreign(clash.clone()).to_string());
        }
        let drift = output::check(&existing, &generated.files);
        if drift.is_empty() {
            note!("{} is up to date ({} files)", dir.display(), generated.files.len());
            return 0;
        }
        let _ = emit(&drift.diff);
        note!(
            "{} is stale: {} to add, {} to change, {} to remove; run the same command without `--check`",
            dir.display(),
            drift.added.len(),
            drift.changed.len(),
            drift.removed.len(),
        );
        return 1;
    }
    match output::write_tree(dir, &generated.files) {
        Ok(summary) => {
            note!(
                "wrote {} file{} to {} ({} unchanged, {} removed)",
                summary.written.len(),
                if summary.written.len() == 1 { "" } else { "s" },
                dir.display(),
                summary.unchanged,
                summary.removed.len()
            );
            0
        }
        Err(err) => fail(&err.to_string()),
    }
}

/// The scenario flags of `pressplay simulate`.
struct SimulateFlags {
    scenario: Option<PathBuf>,
    durations: Vec<String>,
    failure_rate: Option<f64>,
    seed: Option<u64>,
    merge_after: Option<String>,
}

impl SimulateFlags {
    /// The scenario: the file's, then the flags on top.
    fn scenario(&self) -> Result<crate::model::sim::Scenario, String> {
        use crate::model::report::{ScenarioFile, duration};
        let file = match &self.scenario {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                serde_saphyr::from_str::<ScenarioFile>(&text).map_err(|e| format!("{}: {e}", path.display()))?
            }
            None => ScenarioFile::default(),
        };
        let mut scenario = file.scenario().map_err(|e| match &self.scenario {
            Some(path) => format!("{}: {e}", path.display()),
            None => e,
        })?;
        for pair in &self.durations {
            let (stage, text) = pair
                .split_once('=')
                .ok_or_else(|| format!("--duration {pair:?}: write it as STAGE=DURATION, such as author=45m"))?;
            scenario.durations.insert(stage.to_string(), duration(&format!("--duration {stage}"), text)?);
        }
        if let Some(rate) = self.failure_rate {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("--failure-rate {rate}: give a share between 0 and 1"));
            }
            scenario.failure_rate = rate;
        }
        if let Some(seed) = self.seed {
            scenario.seed = seed;
        }
        if let Some(text) = &self.merge_after {
            scenario.merge = crate::model::sim::Merge::AfterWait(duration("--merge-after", text)?);
        }
        Ok(scenario)
    }
}

fn simulate(input: &Input, format: Format, flags: &SimulateFlags, timeline: TimelineFormat) -> u8 {
    let scenario = match flags.scenario() {
        Ok(scenario) => scenario,
        Err(message) => return fail(&message),
    };
    let name = display(&input.file);
    let generated = match generate(&input.file, &name, &Options { load: input.options(format), templates: None }) {
        Ok(generated) => generated,
        Err(err) => return report(&err),
    };
    report_warnings(&generated.planned);
    let outcome = match crate::model::sim::run(&generated.files, &scenario, &crate::model::dispatch) {
        Ok(outcome) => outcome,
        Err(message) => return fail(&format!("the model could not run the tree: {message}")),
    };
    let summary = crate::model::report::summary(&outcome);
    match timeline {
        TimelineFormat::Text => emit(&format!(
            "{summary}
{}",
            crate::model::sim::timeline(&outcome)
        )),
        TimelineFormat::Mermaid => emit(&format!(
            "{}
%% {}",
            crate::model::sim::mermaid(&outcome),
            summary.trim_end().replace('\n', "\n%% ")
        )),
        TimelineFormat::Svg => {
            note_raw!("{summary}");
            emit(&crate::model::report::svg(&outcome))
        }
    }
}

fn with_plan(input: &Input, format: Format, print: impl Fn(&Plan) -> String) -> u8 {
    match load_and_plan(&input.file, &display(&input.file), &input.options(format)) {
        Ok(planned) => {
            report_warnings(&planned);
            emit(&print(&planned.plan))
        }
        Err(err) => report(&err),
    }
}

/// The path as the user wrote it, with `/` separators and without `./` steps, so that
/// `in.yaml` and `./in.yaml` render the same bytes.
fn display(path: &Path) -> String {
    let text = path.to_string_lossy().replace('\\', "/");
    let parts: Vec<&str> = text.split('/').filter(|part| *part != ".").collect();
    let joined = parts.join("/");
    let collapsed = joined.split('/').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("/");
    if text.starts_with('/') { format!("/{collapsed}") } else { collapsed }
}

fn report_warnings(planned: &Planned) {
    if !planned.warnings.is_empty() {
        note_raw!("{}", planned.source.render(&planned.warnings));
    }
}

fn report(err: &Error) -> u8 {
    match err {
        Error::Invalid { file, diagnostics } | Error::Load(crate::spec::LoadError::Invalid { file, diagnostics }) => {
            note_raw!("{}", file.render(diagnostics));
            let errors = diagnostics.iter().filter(|d| d.is_error()).count();
            note!("\nerror: `{}` has {errors} problem{}", file.name, if errors == 1 { "" } else { "s" });
            2
        }
        other => fail(&other.to_string()),
    }
}

fn fail(message: &str) -> u8 {
    note!("error: {message}");
    2
}

/// Writes to stdout; a closed pipe (`pressplay graph | head`) is not an error.
fn emit(text: &str) -> u8 {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => 0,
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(err) => fail(&format!("cannot write to stdout: {err}")),
    }
}

fn show_profiles(name: Option<&str>, backlog: Option<PathBuf>, dir: Option<PathBuf>) -> u8 {
    // Resolve through the same path as a render: a backlog (or an empty one) plus the directory.
    let (path, display, _keep) = match backlog {
        Some(path) => {
            let display = display(&path);
            (path, display, None)
        }
        None => {
            let temp = match tempfile::tempdir() {
                Ok(temp) => temp,
                Err(err) => return fail(&format!("cannot create a temporary file: {err}")),
            };
            let path = temp.path().join("requirements.yaml");
            if let Err(err) = std::fs::write(&path, "tasks: []\n") {
                return fail(&format!("cannot write a temporary file: {err}"));
            }
            (path, "(built-in)".to_owned(), Some(temp))
        }
    };
    let options = LoadOptions { format: Format::Auto, profiles: dir, ..LoadOptions::default() };
    let loaded = match crate::spec::load(&path, &display, &options) {
        Ok(loaded) => loaded,
        Err(err) => return report(&Error::Load(err)),
    };
    if loaded.problems.iter().any(crate::diagnostic::Diagnostic::is_error) {
        return report(&Error::Invalid { file: loaded.source, diagnostics: loaded.problems });
    }
    let profiles = &loaded.backlog.profiles;
    match name {
        None => {
            let mut out = String::new();
            for (role, profile) in profiles {
                out.push_str(&format!(
                    "{:<11} {:<8} {:<22} {:<20} {}\n",
                    role.as_str(),
                    profile.kind,
                    profile.github_app,
                    profile.model,
                    profile.description
                ));
            }
            emit(&out)
        }
        Some(name) => match profiles.iter().find(|(role, _)| role.as_str() == name) {
            Some((_, profile)) => {
                let text = serde_saphyr::to_string(profile).expect("profiles serialise");
                emit(&format!("# {name}\n{text}"))
            }
            None => {
                let known: Vec<&str> = profiles.keys().map(|r| r.as_str()).collect();
                let hint = match crate::spec::suggest::closest(name, known.iter().copied()) {
                    Some(close) => format!("did you mean `{close}`?"),
                    None => format!("known profiles: {}", known.join(", ")),
                };
                fail(&format!("unknown profile `{name}`; {hint}"))
            }
        },
    }
}

/// A title shortened for a graph label.
fn short_title(title: &str) -> String {
    let line = title.lines().next().unwrap_or("");
    if line.chars().count() > 48 {
        format!("{}…", line.chars().take(47).collect::<String>())
    } else {
        line.to_owned()
    }
}

fn dot(plan: &Plan) -> String {
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut out = String::from("digraph backlog {\n  rankdir=LR;\n  node [shape=box];\n");
    for task in &plan.tasks {
        out.push_str(&format!(
            "  \"{}\" [label=\"{}\"];\n",
            task.node,
            quote(&format!("{}: {}", task.id, short_title(&task.title)))
        ));
    }
    for task in &plan.tasks {
        for &dep in &task.dependencies {
            out.push_str(&format!("  \"{}\" -> \"{}\";\n", plan.tasks[dep].node, task.node));
        }
    }
    out.push_str("}\n");
    out
}

fn mermaid(plan: &Plan) -> String {
    let id = |name: &str| name.replace('-', "_");
    let mut out = String::from("flowchart LR\n");
    for task in &plan.tasks {
        out.push_str(&format!(
            "  {}[\"{}\"]\n",
            id(task.node.as_str()),
            format!("{}: {}", task.id, short_title(&task.title)).replace('"', "#quot;")
        ));
    }
    for task in &plan.tasks {
        for &dep in &task.dependencies {
            out.push_str(&format!("  {} --> {}\n", id(plan.tasks[dep].node.as_str()), id(task.node.as_str())));
        }
    }
    out
}

fn summary(plan: &Plan) -> String {
    let stats = &plan.stats;
    let n = plan.tasks.len();
    let plural = |count: usize, word: &str| format!("{count} {word}{}", if count == 1 { "" } else { "s" });
    let mut out =
        format!("project `{}`: {} to run in {}\n", plan.project.name, plural(n, "task"), plural(stats.levels, "level"));
    let path: Vec<String> = stats.critical_path.iter().map(|&t| plan.tasks[t].id.to_string()).collect();
    out.push_str(&format!(
        "critical path: {}, {} ({})\n",
        plural(stats.critical_path.len(), "task"),
        plural(stats.critical_path_stages, "agent stage"),
        abbreviate(&path, " → ", 12)
    ));
    let widest = stats.level_sizes.iter().copied().max().unwrap_or(0);
    out.push_str(&format!(
        "parallelism: up to {} ready at once (widest level); {} at once (defaults.concurrency)\n",
        plural(widest, "task"),
        plural(plan.defaults.concurrency as usize, "agent")
    ));
    out.push_str(&format!(
        "runs: one Workflow per task, started as soon as every task it depends on has merged (no task waits for an \
         unrelated one), at most {} open at once (defaults.maxOpenTasks); task graph in {}, briefs in {}\n",
        plan.defaults.max_open_tasks,
        plural(plan.graph_maps.len(), "ConfigMap"),
        plural(plan.brief_maps.len(), "ConfigMap"),
    ));
    match crate::measure_run(plan) {
        Ok(Some(figures)) => out.push_str(&format!(
            "largest run object: {:.1} KiB, a task Workflow ({} nodes, one remediation, a month waiting for its merge; \
             the same at any backlog size); the run: {:.1} KiB after a {}-day wait (limit: 1024 KiB)\n",
            figures.largest_task as f64 / 1024.0,
            figures.largest_task_nodes,
            figures.run as f64 / 1024.0,
            figures.days,
        )),
        Ok(None) => {}
        Err(message) => out.push_str(&format!("largest run object: not measured ({message})\n")),
    }
    if !stats.not_scheduled.is_empty() {
        let mut by_reason: std::collections::BTreeMap<String, Vec<String>> = std::collections::BTreeMap::new();
        for skipped in &stats.not_scheduled {
            let reason = match &skipped.reason {
                crate::plan::Reason::Status(status) => format!("{status}"),
                crate::plan::Reason::HeldBackBy(id) => format!("held back by `{id}`"),
            };
            by_reason.entry(reason).or_default().push(skipped.id.to_string());
        }
        out.push_str(&format!("not scheduled: {} tasks\n", stats.not_scheduled.len()));
        for (reason, ids) in by_reason {
            out.push_str(&format!("  {reason}: {}\n", abbreviate(&ids, ", ", 16)));
        }
    }
    if n == 0 {
        out.push_str("nothing to run: the run has a single `nothing-to-run` step\n");
        return out;
    }
    out.push_str("levels:\n");
    let mut by_level: Vec<Vec<String>> = vec![Vec::new(); stats.levels];
    for task in &plan.tasks {
        by_level[task.level].push(task.id.to_string());
    }
    for (level, ids) in by_level.iter().enumerate() {
        out.push_str(&format!(
            "  {level:>3}: {} task{}: {}\n",
            ids.len(),
            if ids.len() == 1 { "" } else { "s" },
            abbreviate(ids, ", ", 16)
        ));
    }
    out
}

fn abbreviate(items: &[String], separator: &str, keep: usize) -> String {
    if items.len() <= keep {
        return items.join(separator);
    }
    format!("{}{separator}… and {} more", items[..keep].join(separator), items.len() - keep)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
