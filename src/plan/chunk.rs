//! Chunking: splits a schedule-ordered task list into DAGs that each respect Argo's limits (at
//! most 200 tasks per DAG, objects well under 256 KiB), and nests them until the top DAG fits.
//!
//! Chunks are contiguous runs of the schedule order (level by level), so every dependency goes
//! from an earlier chunk to a later one (or stays inside one) and the chunk graph is acyclic.

/// The most tasks Argo's v4.1 CRD allows in one DAG template.
pub const MAX_DAG_TASKS: usize = 200;
/// Estimated JSON bytes one DAG object may hold: 256 KiB less headroom for the object's frame.
pub const MAX_DAG_BYTES: usize = 200 * 1024;

/// One group of items (tasks, or chunks of the level below) that becomes one DAG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Indices of the items, in order.
    pub items: Vec<usize>,
    /// Indices of the chunks (of the same level) this one waits for, ascending.
    pub depends_on: Vec<usize>,
}

/// Splits items `0..sizes.len()` (already in an order where every dependency comes first) into
/// chunks of at most `max_items` items and `max_bytes` estimated bytes. `dependencies[i]` lists
/// the items `i` depends on. An item larger than `max_bytes` gets a chunk of its own.
pub fn split(sizes: &[usize], dependencies: &[Vec<usize>], max_items: usize, max_bytes: usize) -> Vec<Chunk> {
    let mut chunk_of = vec![0usize; sizes.len()];
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut bytes = 0usize;
    for (item, &size) in sizes.iter().enumerate() {
        let full = chunks.last().is_none_or(|c| c.items.len() >= max_items || bytes + size > max_bytes);
        if full {
            chunks.push(Chunk { items: Vec::new(), depends_on: Vec::new() });
            bytes = 0;
        }
        bytes += size;
        let index = chunks.len() - 1;
        chunks[index].items.push(item);
        chunk_of[item] = index;
    }
    for (index, chunk) in chunks.iter_mut().enumerate() {
        let mut depends_on: Vec<usize> = chunk
            .items
            .iter()
            .flat_map(|&item| dependencies[item].iter().map(|&dep| chunk_of[dep]))
            .filter(|&other| other != index)
            .collect();
        depends_on.sort_unstable();
        depends_on.dedup();
        debug_assert!(depends_on.iter().all(|&other| other < index), "items must come in dependency order");
        chunk.depends_on = depends_on;
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_by_count_and_bytes_and_links_chunks() {
        // Items 0..5; 3 depends on 0, 4 depends on 3.
        let deps = vec![vec![], vec![], vec![], vec![0], vec![3]];
        let chunks = split(&[1, 1, 1, 1, 1], &deps, 2, 100);
        assert_eq!(chunks.iter().map(|c| c.items.clone()).collect::<Vec<_>>(), vec![vec![0, 1], vec![2, 3], vec![4]]);
        assert_eq!(chunks[1].depends_on, vec![0]);
        assert_eq!(chunks[2].depends_on, vec![1]);
        let by_bytes = split(&[60, 60, 10], &deps[..3], 10, 100);
        assert_eq!(by_bytes.len(), 2);
    }
}
