//! "Did you mean" suggestions: the closest known word by edit distance (adjacent swaps count one).

/// Returns the candidate closest to `word`, if it is close enough to be a plausible typo.
/// Ties go to the first candidate, so callers pass candidates in a stable order.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    // One edit for words of two characters or more; a one-character word has no plausible typo.
    let length = word.chars().count();
    let limit = if length < 2 { 0 } else { (length / 3).max(1) };
    let mut best: Option<((usize, usize, bool), &str)> = None;
    for candidate in candidates {
        let distance = edit_distance(word, candidate);
        if distance > limit {
            continue;
        }
        // Among equally distant candidates, a same-length one and then an anagram (a swap of
        // two characters, the most common slip when typing ids) is the likelier intent.
        let rank = (distance, word.len().abs_diff(candidate.len()), !is_anagram(word, candidate));
        if best.is_none_or(|(r, _)| rank < r) {
            best = Some((rank, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

fn is_anagram(a: &str, b: &str) -> bool {
    let mut a: Vec<char> = a.chars().collect();
    let mut b: Vec<char> = b.chars().collect();
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

/// Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut rows = vec![0usize; (a.len() + 1) * width];
    for (j, cell) in rows.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        rows[i * width] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut value = (rows[(i - 1) * width + j] + 1)
                .min(rows[i * width + j - 1] + 1)
                .min(rows[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                value = value.min(rows[(i - 2) * width + j - 2] + 1);
            }
            rows[i * width + j] = value;
        }
    }
    rows[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_swapped_digits_and_typos() {
        assert_eq!(closest("17", ["1", "18", "71"]), Some("71"));
        assert_eq!(closest("biuld", ["build", "test"]), Some("build"));
        assert_eq!(closest("zzz", ["build", "test"]), None);
    }
}
