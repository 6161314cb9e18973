fn unique(l: Vec<i64>) -> Vec<i64> {
    let mut v = l.clone();
    v.sort();
    v.dedup();
    v
}
