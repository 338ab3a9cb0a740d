//! Packing: splits a schedule-ordered list of items (task records, briefs) into ConfigMaps that
//! each stay well under Kubernetes' and Argo CD's limits. Packs are contiguous runs of the order,
//! so the same backlog always packs the same way.

/// Estimated bytes one ConfigMap may hold: 256 KiB (the largest file a GitOps tree should hold,
/// and far under the 1 MiB object limit) less headroom for the object's frame.
pub const MAX_MAP_BYTES: usize = 200 * 1024;

/// Splits items `0..sizes.len()` into contiguous packs of at most `max_bytes` estimated bytes.
/// An item larger than `max_bytes` gets a pack of its own. No items, no packs.
pub fn pack(sizes: &[usize], max_bytes: usize) -> Vec<Vec<usize>> {
    let mut packs: Vec<Vec<usize>> = Vec::new();
    let mut bytes = 0usize;
    for (item, &size) in sizes.iter().enumerate() {
        match packs.last_mut() {
            Some(last) if bytes + size <= max_bytes => last.push(item),
            _ => {
                packs.push(vec![item]);
                bytes = 0;
            }
        }
        bytes += size;
    }
    packs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_in_order_by_bytes() {
        assert_eq!(pack(&[60, 60, 10, 100], 100), vec![vec![0], vec![1, 2], vec![3]]);
        assert_eq!(pack(&[150, 1], 100), vec![vec![0], vec![1]], "an oversized item stands alone");
        assert!(pack(&[], 100).is_empty());
    }
}
