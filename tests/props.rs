//! Properties over random DAGs (random upper-triangular edge sets) and random ids.

use std::collections::BTreeSet;

use proptest::prelude::*;

use pressplay::diagnostic::SourceFile;
use pressplay::plan::{self, PlanError};
use pressplay::spec;

/// A random DAG: `n` tasks, edges only from a lower index to a higher one.
fn dag() -> impl Strategy<Value = (usize, Vec<(usize, usize)>)> {
    (2usize..40).prop_flat_map(|n| {
        let edges = proptest::collection::vec((0..n, 0..n), 0..(n * 2))
            .prop_map(|pairs| pairs.into_iter().filter(|(a, b)| a < b).collect::<BTreeSet<_>>().into_iter().collect());
        (Just(n), edges)
    })
}

/// Backlog text with tasks in the given order; task `i` has id `ids[i]`.
fn backlog(ids: &[String], edges: &[(usize, usize)], order: &[usize]) -> String {
    let mut out = String::from("tasks:\n");
    for &i in order {
        let deps: Vec<String> =
            edges.iter().filter(|(_, b)| *b == i).map(|(a, _)| format!("\"{}\"", ids[*a])).collect();
        out.push_str(&format!(
            "  - id: \"{}\"\n    title: task {i}\n    dependencies: [{}]\n",
            ids[i],
            deps.join(", ")
        ));
    }
    out
}

fn numeric_ids(n: usize) -> Vec<String> {
    (1..=n).map(|i| i.to_string()).collect()
}

fn plan_of(text: &str) -> Result<plan::Plan, Vec<PlanError>> {
    let loaded = spec::parse(SourceFile::new("p.yaml", text)).unwrap();
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    plan::build(&loaded.backlog)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_edge_goes_to_a_higher_level((n, edges) in dag()) {
        let ids = numeric_ids(n);
        let plan = plan_of(&backlog(&ids, &edges, &(0..n).collect::<Vec<_>>())).unwrap();
        for task in &plan.tasks {
            for &dep in &task.dependencies {
                prop_assert!(plan.tasks[dep].level < task.level);
            }
        }
    }

    #[test]
    fn a_back_edge_is_reported_as_a_cycle_with_its_path((n, edges) in dag(), pick in any::<prop::sample::Index>()) {
        prop_assume!(!edges.is_empty());
        let (a, b) = edges[pick.index(edges.len())];
        let mut with_back = edges.clone();
        with_back.push((b, a));
        let ids = numeric_ids(n);
        let errors = plan_of(&backlog(&ids, &with_back, &(0..n).collect::<Vec<_>>())).unwrap_err();
        let found = errors.iter().any(|e| match e {
            PlanError::Cycle(path) => {
                let texts: Vec<&str> = path.iter().map(|id| id.as_str()).collect();
                texts.first() == texts.last() && texts.contains(&ids[a].as_str()) && texts.contains(&ids[b].as_str())
            }
            _ => false,
        });
        prop_assert!(found, "{:?}", errors);
    }

    #[test]
    fn task_order_does_not_change_the_output((n, edges) in dag(), seed in any::<u64>()) {
        let ids = numeric_ids(n);
        let forward: Vec<usize> = (0..n).collect();
        let mut shuffled = forward.clone();
        // A seeded Fisher-Yates shuffle.
        let mut state = seed | 1;
        for i in (1..n).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let a = crate::common::render_text(&backlog(&ids, &edges, &forward)).unwrap();
        let b = crate::common::render_text(&backlog(&ids, &edges, &shuffled)).unwrap();
        prop_assert_eq!(a.files, b.files);
    }

    #[test]
    fn every_name_is_a_valid_dns_label(
        ids in proptest::collection::btree_set("[A-Za-z0-9][A-Za-z0-9._:/+#@-]{0,70}", 1..30)
    ) {
        let ids: Vec<String> = ids.into_iter().collect();
        // Ids that are equal as task ids (`7` and `07` are not, `7` and `7` are) are deduplicated by the set.
        let plan = match plan_of(&backlog(&ids, &[], &(0..ids.len()).collect::<Vec<_>>())) {
            Ok(plan) => plan,
            Err(errors) => return Err(TestCaseError::fail(format!("{errors:?}"))),
        };
        let names: BTreeSet<&str> = plan.tasks.iter().map(|t| t.node.as_str()).collect();
        prop_assert_eq!(names.len(), plan.tasks.len(), "node names collide");
        for task in &plan.tasks {
            let name = task.node.as_str();
            prop_assert!(plan::names::is_valid_name(name) && name.len() <= plan::names::MAX_NODE_LEN, "{}", name);
        }
    }
}
