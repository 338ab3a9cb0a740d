//! The task graph: petgraph over task indices, edges from a dependency to its dependent. Finds
//! every cycle (one path per strongly connected component, in the user's ids) and the levels of
//! an acyclic graph.

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

/// A dependency graph over tasks `0..n`.
#[derive(Debug, Clone)]
pub struct TaskGraph {
    graph: DiGraph<(), ()>,
}

impl TaskGraph {
    /// Builds the graph; `dependencies[t]` lists the tasks `t` depends on.
    pub fn new(dependencies: &[Vec<usize>]) -> Self {
        let mut graph = DiGraph::with_capacity(dependencies.len(), dependencies.iter().map(Vec::len).sum());
        for _ in dependencies {
            graph.add_node(());
        }
        for (task, deps) in dependencies.iter().enumerate() {
            for &dep in deps {
                graph.add_edge(NodeIndex::new(dep), NodeIndex::new(task), ());
            }
        }
        Self { graph }
    }

    /// One cycle per strongly connected component that has one, as a closed path of task
    /// indices that starts and ends at the component's smallest index (`[1, 4, 9, 1]`), in
    /// dependency order: each task is followed by a task that depends on it. Sorted by start.
    pub fn cycles(&self) -> Vec<Vec<usize>> {
        let mut cycles: Vec<Vec<usize>> = tarjan_scc(&self.graph)
            .into_iter()
            .filter(|component| component.len() > 1 || self.graph.contains_edge(component[0], component[0]))
            .map(|component| self.cycle_in(&component))
            .collect();
        cycles.sort();
        cycles
    }

    /// A shortest cycle through the smallest node of a strongly connected component, found by a
    /// breadth-first search that stays inside the component.
    fn cycle_in(&self, component: &[NodeIndex]) -> Vec<usize> {
        let mut members: Vec<usize> = component.iter().map(|n| n.index()).collect();
        members.sort_unstable();
        let start = members[0];
        let inside = |n: usize| members.binary_search(&n).is_ok();
        let mut parent: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        while let Some(node) = queue.pop_front() {
            let mut next: Vec<usize> = self.graph.neighbors(NodeIndex::new(node)).map(|n| n.index()).collect();
            next.sort_unstable();
            for succ in next {
                if succ == start {
                    let mut path = vec![node];
                    let mut at = node;
                    while at != start {
                        at = parent[&at];
                        path.push(at);
                    }
                    path.reverse();
                    path.push(start);
                    return path;
                }
                if inside(succ) && succ != start && !parent.contains_key(&succ) {
                    parent.insert(succ, node);
                    queue.push_back(succ);
                }
            }
        }
        unreachable!("a strongly connected component with an edge has a cycle through each member")
    }

    /// The level of every task in an acyclic graph: 0 for tasks without dependencies, else one
    /// more than the highest level among its dependencies (longest path from a root).
    pub fn levels(&self, dependencies: &[Vec<usize>]) -> Vec<usize> {
        let order = petgraph::algo::toposort(&self.graph, None).expect("levels are only asked of acyclic graphs");
        let mut level = vec![0usize; dependencies.len()];
        for node in order {
            let task = node.index();
            level[task] = dependencies[task].iter().map(|&d| level[d] + 1).max().unwrap_or(0);
        }
        level
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_cycle_whole() {
        // 0 -> 1 -> 2 -> 0 and 3 -> 3; 4 depends on 0 but is not in a cycle.
        let deps = vec![vec![2], vec![0], vec![1], vec![3], vec![0]];
        assert_eq!(TaskGraph::new(&deps).cycles(), vec![vec![0, 1, 2, 0], vec![3, 3]]);
    }

    #[test]
    fn levels_are_longest_paths() {
        let deps = vec![vec![], vec![0], vec![0, 1], vec![]];
        let graph = TaskGraph::new(&deps);
        assert!(graph.cycles().is_empty());
        assert_eq!(graph.levels(&deps), vec![0, 1, 2, 0]);
    }
}
